// At start, the other mode's rules go (flannel: "Cleaning-up unused traffic manager rules"), so a node
// switched between iptables and nftables mode does not apply both. Beyond flannel: the iptables
// leftovers go completely (plan.ts leftoverPayload), and a missing binary is a note, not an exit: with
// no iptables there can be no iptables rules of ours (flannel exits 1 in nftables mode without them).
import type { Family } from '../ip/index.js';
import { log } from '../log.js';
import { IptablesMissingError, type IptablesRunner } from './iptables.js';
import { parseSave, type SavedTable } from './iptables-save.js';
import { NftMissingError, type NftRunner } from './nft.js';
import { parseNftTables, tableKey } from './nft-plan.js';
import { deleteTableLine, NFT_TABLES } from './nft-rules.js';
import { leftoverPayload } from './plan.js';

/** Removes flannel's iptables chains and the jumps to them, IPv4 and IPv6; returns the families cleaned. */
export async function cleanIptablesLeftovers(runner: IptablesRunner): Promise<Family[]> {
  log.info('Cleaning-up iptables rules...');
  const cleaned: Family[] = [];
  for (const family of [4, 6] as const) {
    try {
      const saved = new Map<string, SavedTable>();
      for (const table of ['nat', 'filter']) for (const [name, t] of parseSave(await runner.save(family, table))) saved.set(name, t);
      const payload = leftoverPayload(saved);
      if (payload === '') continue;
      await runner.restore(family, payload);
      cleaned.push(family);
      log.info(`removed flannel's iptables-mode rules (IPv${family})`);
    } catch (e) {
      if (e instanceof IptablesMissingError) {
        log.info(`${e.binary} not found: no iptables-mode rules to clean up (IPv${family})`);
        continue;
      }
      log.error(`could not clean up iptables-mode rules (IPv${family}): ${(e as Error).message}`);
    }
  }
  return cleaned;
}

/** Deletes the tables flannel-ipv4 / flannel-ipv6 of nftables mode, in one transaction, if they exist. */
export async function cleanNftLeftovers(runner: NftRunner): Promise<number> {
  try {
    const present = parseNftTables(await runner.listJson('tables'));
    const ours = [NFT_TABLES[4], NFT_TABLES[6]].filter((t) => present.has(tableKey(t)));
    if (ours.length === 0) return 0;
    log.info('Cleaning-up nftables rules...');
    await runner.run(ours.map(deleteTableLine).join('\n') + '\n');
    return ours.length;
  } catch (e) {
    if (e instanceof NftMissingError) {
      log.v(2).info('nft not found: no nftables-mode tables to clean up');
      return 0;
    }
    log.error(`could not clean up nftables-mode tables: ${(e as Error).message}`);
    return 0;
  }
}
