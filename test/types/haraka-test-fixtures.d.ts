// The parts of haraka-test-fixtures the plugin tests use.
declare module 'haraka-test-fixtures' {
  interface HookResult { rc: number | undefined; msg: unknown }
  interface FixtureConnection {
    uuid: string;
    remote: { ip: string; host?: string; closed?: boolean };
    local: { ip: string; port: number; host: string };
    hello: { verb?: string; host?: string };
    capabilities: string[] | null;
    tls: { advertised?: boolean };
    notes: Record<string, unknown>;
    results: { get(name: string): Record<string, unknown[]> | undefined; add(p: { name: string }, r: Record<string, unknown>): void };
    transaction: {
      uuid: string;
      notes: { get(k: string): unknown; set(k: string, v: unknown): void };
      results: { get(name: string): Record<string, unknown[]> | undefined; add(p: { name: string }, r: Record<string, unknown>): void };
      header: { get(name: string): string; get_all(name: string): string[] };
      add_data(line: Buffer | string): void;
      end_data(cb?: () => void): void;
      ensure_body?(): void;
      message_stream: NodeJS.ReadableStream;
      mail_from: { isNull(): boolean; format(): string };
    };
    init_transaction(): void;
  }
  interface MakeConnectionOptions {
    ip?: string; helo?: string; host?: string; mailFrom?: string; rcptTo?: string[]; withTxn?: boolean; silent?: boolean;
  }
  type FixturePlugin = Record<string, unknown> & { name: string; hooks: Record<string, string[]> };
  export function makePlugin(name: string, opts?: { register?: boolean; configDir?: string }): FixturePlugin;
  export function makeConnection(opts?: MakeConnectionOptions): FixtureConnection;
  export function callHook(plugin: FixturePlugin, method: string, conn: FixtureConnection, ...args: unknown[]): Promise<HookResult>;
  export function callMail(
    plugin: FixturePlugin, conn: FixtureConnection, addr: string, params?: Record<string, string>,
  ): Promise<HookResult>;
  export function callRcpt(
    plugin: FixturePlugin, conn: FixtureConnection, addr: string, params?: Record<string, string>,
  ): Promise<HookResult>;
  export function callDataPost(plugin: FixturePlugin, conn: FixtureConnection, method?: string): Promise<HookResult>;
  export function callQueue(plugin: FixturePlugin, conn: FixtureConnection, method?: string): Promise<HookResult>;
}
