// node demux.mjs FILE: parse an Ogg/Opus file with web/ogg.js and print JSON:
// {pages: [{sequence, serial, headerType, granule, crcOk, lacing}],
//  packets: [{hex, granule}], head: OpusHead fields, audio: [{samples, start}]}
// (driven by tests/web/test_ogg_interop.py).
import { readFileSync } from "node:fs";

import { OggDemuxer, OggOpusDemuxer, readPage } from "../../../web/ogg.js";

const bytes = new Uint8Array(readFileSync(process.argv[2]));
const pages = [];
for (let at = 0; at < bytes.length;) {
  const page = readPage(bytes, at);
  if (!page) throw new Error(`truncated page at byte ${at}`);
  const { sequence, serial, headerType, granule, crcOk, lacing } = page;
  pages.push({ sequence, serial, headerType, granule: granule.toString(), crcOk, lacing: [...lacing] });
  at += page.size;
}
const packets = new OggDemuxer().push(bytes).packets.map((p) => ({
  hex: Buffer.from(p.data).toString("hex"),
  granule: p.granule === null ? null : p.granule.toString(),
}));
const { head, audio } = new OggOpusDemuxer().push(bytes);
process.stdout.write(JSON.stringify({ pages, packets, head, audio: audio.map(({ samples, start }) => ({ samples, start })) }));
