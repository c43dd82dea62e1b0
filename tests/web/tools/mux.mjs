// node mux.mjs IN.json OUT.ogg: wrap Opus packets into Ogg pages with web/ogg.js.
// IN.json: {packets: [hex, ...], options: OggOpusMuxer options, chunks: bool}
// Writes the stream (header pages, audio pages, EOS page) to OUT.ogg; with `chunks`, also
// prints JSON [hex, ...] of what each write() returned, as the browser would send it.
import { readFileSync, writeFileSync } from "node:fs";

import { OggOpusMuxer, concat } from "../../../web/ogg.js";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const muxer = new OggOpusMuxer(spec.options ?? {});
const chunks = spec.packets.map((h) => muxer.write(Uint8Array.from(Buffer.from(h, "hex"))));
chunks.push(muxer.end());
writeFileSync(process.argv[3], concat(chunks));
if (spec.chunks) process.stdout.write(JSON.stringify(chunks.map((c) => Buffer.from(c).toString("hex"))));
