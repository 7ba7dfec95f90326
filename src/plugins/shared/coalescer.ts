// Haraka's message stream emits one chunk per line; written straight to a
// socket that is one write (one syscall, one TCP segment) per line. This
// gathers what arrives within one turn of the event loop, up to 64 KiB.

import { Transform, TransformCallback } from 'node:stream';

const LIMIT = 64 * 1024;

export class Coalescer extends Transform {
  private pending: Buffer[] = [];
  private size = 0;
  private scheduled = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.size += chunk.length;
    if (this.size >= LIMIT) this.flushPending();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flushPending();
      });
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    this.flushPending();
    done();
  }

  private flushPending(): void {
    if (this.size === 0) return;
    this.push(this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.size));
    this.pending = [];
    this.size = 0;
  }
}
