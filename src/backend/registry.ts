// Backend types by name. An unknown or not-yet-built type is a clear error, never a silent no-op.
import type { BackendContext, BackendFactory, Backend } from './types.js';

export class BackendRegistry {
  private readonly factories = new Map<string, BackendFactory>();

  register(type: string, factory: BackendFactory): this {
    this.factories.set(type.toLowerCase(), factory);
    return this;
  }

  types(): string[] {
    return [...this.factories.keys()].sort();
  }

  async create(type: string, ctx: BackendContext): Promise<Backend> {
    const factory = this.factories.get(type.toLowerCase());
    if (!factory) {
      throw new Error(`backend type "${type}" is not supported by this flanneld (available: ${this.types().join(', ')}); set Backend.Type in net-conf.json to one of them`);
    }
    return factory(ctx);
  }
}
