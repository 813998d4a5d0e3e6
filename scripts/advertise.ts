// `nostr-bt advertise`: the bridge's advertisement (docs/protocol.md §10, kind 30078) signed with
// the operator's Nostr key, published to the relay over its WebSocket (so the relay archives it
// like any event), or printed.
import { join } from 'node:path';
import type { Command } from 'commander';
import { finalizeEvent, getPublicKey } from 'nostr-tools/pure';
import { AbstractRelay } from 'nostr-tools/abstract-relay';
import WebSocket from 'ws';
import type { Config } from '../sidecar/common/config.js';
import { advertTemplate } from '../sidecar/formats/bridge-advert.js';
import { advertProofMessage } from '../sidecar/formats/bridge-advert.js';
import { loadIdentity, readNostrSecret, KeyFileError } from '../sidecar/publishing/identity.js';
import { EXIT_USAGE } from '../sidecar/common/command-line.js';

interface AdvertiseOpts {
  relay?: string;
  nostrKeyFile?: string;
  gateway?: string;
  print?: boolean;
  timeout: string;
}

export function registerAdvertise(program: Command, config: () => Config): void {
  program
    .command('advertise')
    .description(
      "sign the bridge's advertisement (kind 30078: bridge key, gateway, relay) with the operator's Nostr key and publish it to the relay",
    )
    .option('--relay <url>', 'relay to publish to (default: policy.relayUrl)')
    .option('--nostr-key-file <file>', "the operator's Nostr secret key (nsec or hex, mode 0600; default: bridge.nostrKeyFile)")
    .option('--gateway <url>', 'gateway URL to advertise (default: gateway.publicUrl)')
    .option('--print', 'print the signed event as JSON instead of publishing it')
    .option('--timeout <s>', 'how long to wait for the relay', '10')
    .addHelpText(
      'after',
      '\nExit status: 0 published (or printed); 1 the relay refused it or did not answer; 2 usage, config or key error.',
    )
    .action(async (o: AdvertiseOpts) => {
      const c = config();
      const fail = (code: number, msg: string): never => {
        process.stderr.write(`nostr-bt advertise: ${msg}\n`);
        process.exit(code);
      };
      const keyFile = o.nostrKeyFile ?? (c.bridge.nostrKeyFile || undefined);
      if (!keyFile)
        fail(EXIT_USAGE, "no Nostr key: set bridge.nostrKeyFile or give --nostr-key-file (the operator's nsec, in a file of mode 0600)");
      const relay = o.relay ?? (c.policy.relayUrl || undefined);
      if (!o.print && !relay) fail(EXIT_USAGE, 'no relay: give --relay wss://… or set policy.relayUrl (or --print)');
      if (relay && !/^wss?:\/\/[^\s]+$/.test(relay)) fail(EXIT_USAGE, `--relay: not a ws:// or wss:// URL: ${JSON.stringify(relay)}`);
      let secret: Buffer;
      let bridge: ReturnType<typeof loadIdentity>;
      try {
        secret = readNostrSecret(keyFile!);
        bridge = loadIdentity({
          nostrKeyFile: c.bridge.nostrKeyFile || undefined,
          generatedKeyFile: join(c.dataDir, 'bridge.key'),
          create: false,
        });
      } catch (err) {
        return fail(EXIT_USAGE, err instanceof KeyFileError ? err.message : `cannot read a key: ${(err as Error).message}`);
      }
      const pubkey = getPublicKey(secret);
      const template = advertTemplate(
        {
          bridgeKey: bridge.publicKey.toString('hex'),
          proof: bridge.sign(advertProofMessage(pubkey)).toString('hex'),
          gateway: o.gateway ?? (c.gateway.publicUrl || undefined),
          relay,
        },
        Math.floor(Date.now() / 1000),
      );
      const event = finalizeEvent(template, secret);
      secret.fill(0);
      if (o.print) {
        process.stdout.write(JSON.stringify(event) + '\n');
        return;
      }
      const timeoutMs = Math.max(1, Number(o.timeout) || 10) * 1000;
      const r = new AbstractRelay(relay!, { verifyEvent: () => true, websocketImplementation: WebSocket as never, enableReconnect: false });
      try {
        await r.connect({ timeout: timeoutMs });
        const answer = await Promise.race([
          r.publish(event),
          new Promise<never>((_, j) => setTimeout(() => j(new Error(`no OK within ${timeoutMs / 1000} s`)), timeoutMs).unref()),
        ]);
        process.stdout.write(
          JSON.stringify({ published: event.id, relay, kind: event.kind, pubkey, bridge: bridge.publicKey.toString('hex'), answer }) + '\n',
        );
      } catch (err) {
        fail(1, `${relay}: ${(err as Error).message}`);
      } finally {
        r.close();
      }
    });
}
