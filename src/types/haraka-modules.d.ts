// Type declarations for the Haraka packages these plugins import directly.

declare module 'haraka-constants' {
  const constants: {
    cont: number;
    stop: number;
    deny: number;
    denysoft: number;
    denydisconnect: number;
    denysoftdisconnect: number;
    ok: number;
    next_hook: number;
    /** Haraka's connection states (connection.js) */
    connection: { state: { CMD: number; LOOP: number; DATA: number; PAUSE: number; PAUSE_SMTP: number; PAUSE_DATA: number;
      DISCONNECTING: number; DISCONNECTED: number } };
  };
  export = constants;
}

declare module 'haraka-dsn' {
  class DSN {
    code: number;
    reply: string | string[];
    static create(code: number, msg: string | string[], subject?: number, detail?: number): DSN;
  }
  export = DSN;
}
