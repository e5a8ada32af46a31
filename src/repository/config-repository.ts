import type { CallbackConfig } from "../domain/models.js";

/** Tenants' callback configs, served from the loaded configuration (read-only at run time). */
export class ConfigRepository {
  private readonly byTenant = new Map<string, CallbackConfig[]>();
  private readonly byId = new Map<string, CallbackConfig>();

  constructor(configs: readonly CallbackConfig[]) {
    for (const config of configs) {
      this.byId.set(config.id, config);
      const list = this.byTenant.get(config.tenant_id) ?? [];
      list.push(config);
      this.byTenant.set(config.tenant_id, list);
    }
  }

  findByTenant(tenantId: string): readonly CallbackConfig[] {
    return this.byTenant.get(tenantId) ?? [];
  }

  findById(id: string): CallbackConfig | undefined {
    return this.byId.get(id);
  }

  hasTenant(tenantId: string): boolean {
    return this.byTenant.has(tenantId);
  }
}
