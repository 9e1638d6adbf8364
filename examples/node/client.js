// A Node.js client of the moderation service, built from proto/ at run time.
//
//   npm ci && node client.js [HOST:PORT] TEXT...
//
// Prints one JSON line per text: the decision, the categories, and the evidence offsets
// (code points into the text, end exclusive). Set MODERATION_API_KEY when the server asks
// for keys; the key travels as `authorization: Bearer <key>`.
"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO_ROOT = path.resolve(__dirname, "..", "..", "proto");

function loadService() {
  const definition = protoLoader.loadSync("moderation/v1/moderation.proto", {
    includeDirs: [PROTO_ROOT],
    keepCase: true, // field names as in the proto: content_id, risk_score
    enums: String, // enum values by name: DECISION_BLOCK
    longs: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).moderation.v1.ModerationService;
}

function moderate(client, request, metadata) {
  const deadline = new Date(Date.now() + 5000); // the deadline also bounds the model call
  return new Promise((resolve, reject) => {
    client.Moderate(request, metadata, { deadline }, (error, reply) =>
      error ? reject(error) : resolve(reply),
    );
  });
}

async function main(argv) {
  let address = "127.0.0.1:50051";
  if (argv.length > 1 && /^[\w.\-[\]:]+:\d+$/.test(argv[0])) address = argv.shift();
  if (argv.length === 0) {
    console.error("usage: node client.js [HOST:PORT] TEXT...");
    return 2;
  }
  const ModerationService = loadService();
  const client = new ModerationService(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  if (process.env.MODERATION_API_KEY) {
    metadata.set("authorization", `Bearer ${process.env.MODERATION_API_KEY}`);
  }
  try {
    for (const [index, text] of argv.entries()) {
      const reply = await moderate(client, { content_id: String(index), text }, metadata);
      console.log(
        JSON.stringify({
          content_id: reply.content_id,
          decision: reply.decision,
          categories: reply.labels.map((label) => label.category),
          evidence: reply.labels.flatMap((label) =>
            label.evidence.map((e) => [e.start, e.end]),
          ),
          policy: reply.policy.version,
        }),
      );
    }
  } catch (error) {
    // gRPC status names, as every client sees them: INVALID_ARGUMENT, UNAVAILABLE, ...
    console.error(`${grpc.status[error.code]}: ${error.details}`);
    return 1;
  } finally {
    client.close();
  }
  return 0;
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
