"""The ``moderation`` command and the composition root: settings -> objects.

    moderation serve [--host H] [--port 50051]
    moderation check [--jurisdiction J] [--no-llm] TEXT...
    moderation policies [--json]
    moderation health [--address HOST:PORT] [--tls] [--ca F] [--cert F --key F]
    moderation batch --input PATH --output PATH [--jurisdiction J] [--no-llm] [--concurrency N]
    moderation eval --dataset PATH [--text-col C --label-col L] [--jurisdiction J]
    moderation train (--dataset PATH ... | --from-verdicts CACHE.sqlite ...) --output MODEL

Configuration errors print what to fix and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import structlog

from moderation import __version__
from moderation.batch import (
    BatchOptions,
    Progress,
    Source,
    Summary,
    compare,
    open_source,
    run_batch,
)
from moderation.compose import build_moderator, load_prefilter, load_scorer
from moderation.domain import Category, Content, EscalationMode, canonical_jurisdiction
from moderation.errors import ConfigError, DatasetError, InvalidRequest
from moderation.evaluate import evaluate, render
from moderation.jsonform import result_json
from moderation.log import configure
from moderation.metrics import Metrics, MetricsAccess
from moderation.policy import load_policies
from moderation.rpc import convert
from moderation.rpc.access import Gate, load_clients
from moderation.rpc.server import LOOPBACK, ProbeTls, ServerOptions, probe, serve
from moderation.settings import Settings
from moderation.tracing import log_processor
from moderation.tracing import start as start_tracing
from moderation.tracing import wanted as tracing_wanted

log = structlog.get_logger("moderation.cli")


def _server_options(settings: Settings, host: str | None, port: int | None) -> ServerOptions:
    return ServerOptions(
        host=host or settings.host,
        port=settings.port if port is None else port,
        max_message_bytes=settings.max_message_bytes,
        max_concurrent_rpcs=settings.max_concurrent_rpcs,
        max_batch_items=settings.max_batch_items,
        stream_window=settings.stream_window,
        stream_idle_seconds=settings.stream_idle_seconds,
        drain_seconds=settings.drain_seconds,
        grace_seconds=settings.grace_seconds,
    )


def _read(path: Path | None, variable: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path}: {exc.strerror}") from exc


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
        raise ConfigError(
            "set both MODERATION_TLS_CERT_FILE and MODERATION_TLS_KEY_FILE, or neither"
        )
    if settings.tls_client_ca_file is not None and settings.tls_cert_file is None:
        raise ConfigError("MODERATION_TLS_CLIENT_CA_FILE (mTLS) needs the server's TLS files too")
    gate = Gate(load_clients(settings.api_keys_file, settings.api_keys.get_secret_value()))
    metrics = Metrics() if settings.metrics_port else None
    tracing = start_tracing()  # before the model client exists, so its calls make spans
    moderator = build_moderator(settings, on_result=metrics.observe if metrics else None)
    options = replace(
        _server_options(settings, args.host, args.port),
        tls_cert=_read(settings.tls_cert_file, "MODERATION_TLS_CERT_FILE"),
        tls_key=_read(settings.tls_key_file, "MODERATION_TLS_KEY_FILE"),
        tls_client_ca=_read(settings.tls_client_ca_file, "MODERATION_TLS_CLIENT_CA_FILE"),
    )
    if metrics is not None:
        if moderator.escalator is not None:
            metrics.watch(moderator.model_usage)
        access = MetricsAccess(
            token=settings.metrics_token.get_secret_value(),
            cert_file=settings.tls_cert_file,
            key_file=settings.tls_key_file,
            client_ca_file=settings.tls_client_ca_file,
        )
        try:
            metrics.serve(settings.metrics_host, settings.metrics_port, access)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"MODERATION_METRICS_PORT: cannot serve metrics on "
                f"{settings.metrics_host}:{settings.metrics_port}: {exc.strerror or exc}"
            ) from exc
        if not access.protected and settings.metrics_host not in LOOPBACK:
            log.warning(
                "metrics.unprotected",
                reason="metrics listen beyond loopback without a token or client certificates; "
                "set MODERATION_METRICS_TOKEN",
            )

    async def run() -> None:
        try:
            await serve(moderator, options, gate=gate, metrics=metrics, tracing=tracing)
        finally:
            await moderator.aclose()

    try:
        asyncio.run(run())
    finally:
        if tracing is not None:
            tracing.shutdown()
    return 0


def _cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    moderator = build_moderator(settings, use_model=not args.no_llm)
    mode = EscalationMode.NEVER if args.no_llm else EscalationMode.AUTO
    jurisdiction = canonical_jurisdiction(args.jurisdiction or "")

    async def run() -> int:
        try:
            return await judge_all()
        finally:
            await moderator.aclose()

    async def judge_all() -> int:
        status = 0
        for index, text in enumerate(args.texts):
            content = Content(
                text=text, content_id=str(index), jurisdiction=jurisdiction, escalation=mode
            )
            try:
                result = await moderator.moderate(content)
            except InvalidRequest as error:
                print(f"moderation check: text {index}: {error}", file=sys.stderr)
                status = 2
                continue
            line = result_json(result)
            print(json.dumps(line, ensure_ascii=False, separators=(",", ":")), flush=True)
        return status

    return asyncio.run(run())


def _cmd_policies(settings: Settings, args: argparse.Namespace) -> int:
    policies = load_policies(settings.policy_dir, default=settings.default_jurisdiction)
    _, lexicon = load_prefilter()
    scorer = load_scorer(settings.scorer_path)
    if args.json:
        message = convert.to_policy_list(policies, lexicon.version, scorer)
        print(json.dumps(convert.to_json(message), ensure_ascii=False, indent=2))
        return 0
    print(
        f"lexicon {lexicon.version}, {len(lexicon)} entries; "
        f"default jurisdiction {policies.default}"
    )
    if scorer is None:
        print("scorer: off (the rules alone route)")
    else:
        print(f"scorer {scorer.version}, trained on {scorer.training_digest}")
    for policy in policies:
        categories = ", ".join(c.name for c in policy.enabled_categories)
        endpoints = ", ".join(sorted(policy.model_endpoints)) or "none"
        print(f"\n{policy.jurisdiction}  {policy.version}  (fail mode {policy.fail_mode.name})")
        print(f"  {policy.description}")
        print(f"  categories: {categories}")
        print(f"  model endpoints: {endpoints}")
        print(
            f"  scorer: escalate at {policy.scorer.escalate_at}, block at {policy.scorer.block_at}"
        )
    return 0


def _probe_tls(settings: Settings, args: argparse.Namespace) -> ProbeTls | None:
    """TLS for ``health``: from its flags, else as the server in this environment serves.

    Beside a TLS server (its MODERATION_TLS_* set, as in the container) the probe speaks TLS
    and, under mTLS, presents MODERATION_HEALTH_TLS_CERT_FILE/KEY_FILE, or else the server's
    own certificate (which works when one CA issues both).
    """
    server_tls = settings.tls_cert_file is not None
    if not (args.tls or args.ca or args.cert or server_tls):
        return None
    cert, key = args.cert, args.key
    if cert is None and settings.tls_client_ca_file is not None:
        cert = settings.health_tls_cert_file or settings.tls_cert_file
        key = settings.health_tls_key_file or settings.tls_key_file
    if (cert is None) != (key is None):
        raise ConfigError("health: give both --cert and --key, or neither")
    return ProbeTls(
        ca=_read(args.ca, "--ca"),
        cert=_read(cert, "--cert"),
        key=_read(key, "--key"),
        server_name=args.server_name,
    )


def _cmd_health(settings: Settings, args: argparse.Namespace) -> int:
    address = args.address or f"127.0.0.1:{settings.port}"
    serving = asyncio.run(probe(address, wait_s=args.timeout, tls=_probe_tls(settings, args)))
    print("SERVING" if serving else "NOT_SERVING")
    return 0 if serving else 1


def _cmd_batch(settings: Settings, args: argparse.Namespace) -> int:
    output = Path(args.output)
    if not output.parent.is_dir():
        print(f"moderation batch: --output: no directory {output.parent}", file=sys.stderr)
        return 2
    if args.concurrency < 1:
        print("moderation batch: --concurrency must be at least 1", file=sys.stderr)
        return 2
    if settings.cache_path is None:
        # Verdicts live beside the output, so a resumed run reuses them and answers the same.
        settings = settings.model_copy(
            update={"cache_path": output.with_name(output.name + ".verdicts.db")}
        )
    source = open_source(args.input)
    options = BatchOptions(
        jurisdiction=canonical_jurisdiction(args.jurisdiction or ""),
        use_model=not args.no_llm,
        concurrency=args.concurrency,
        overwrite=args.overwrite,
    )
    policies = load_policies(settings.policy_dir, default=settings.default_jurisdiction)
    if options.jurisdiction and options.jurisdiction not in policies:
        known = ", ".join(p.jurisdiction for p in policies)
        print(
            f"moderation batch: --jurisdiction: unknown {options.jurisdiction!r}; known: {known}",
            file=sys.stderr,
        )
        return 2
    if args.engine == "ray":
        return _batch_on_ray(settings, args, source, output, options)
    moderator = build_moderator(settings, use_model=not args.no_llm, log_decisions=args.log_items)

    async def run() -> Summary:
        try:
            return await run_batch(
                moderator,
                source,
                output,
                options,
                progress=Progress(source.total()),
            )
        finally:
            await moderator.aclose()

    summary = asyncio.run(run())
    print(summary.render())
    if args.compare:
        print(compare(Path(args.compare), output).render())
    return 0


def _batch_on_ray(
    settings: Settings,
    args: argparse.Namespace,
    source: Source,
    output: Path,
    options: BatchOptions,
) -> int:
    try:
        from moderation.ray_batch import run_on_ray
    except ImportError:
        print(
            "moderation batch: --engine ray needs the extra: pip install 'moderation[ray]'",
            file=sys.stderr,
        )
        return 2
    summary = run_on_ray(
        settings, source, output, options, address=args.ray_address, actors=args.actors
    )
    print(summary.render())
    return 0


def _cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    moderator = build_moderator(settings, use_model=False)
    path = Path(args.dataset)
    if not path.is_file():
        print(f"moderation eval: --dataset: no such file {path}", file=sys.stderr)
        return 2
    try:
        report = evaluate(
            moderator,
            path,
            text_col=args.text_col,
            label_col=args.label_col,
            jurisdiction=canonical_jurisdiction(args.jurisdiction or ""),
            limit=args.limit,
        )
    except DatasetError as error:
        print(f"moderation eval: {error}", file=sys.stderr)
        return 2
    print(render(report, path.name))
    return 0


def _cmd_broad_lexicon(settings: Settings, args: argparse.Namespace) -> int:
    from moderation import broad

    folder = Path(args.houbb)
    tags = folder / "sensitive_word_tags.txt"
    if not tags.is_file():
        print(f"moderation broad-lexicon: --houbb: no {tags}", file=sys.stderr)
        return 2
    allow = folder / "sensitive_word_allow.txt"
    normalizer, lexicon = load_prefilter()
    terms, dropped = broad.build(
        tags, allow if allow.is_file() else None, normalizer, (e.term for e in lexicon.entries)
    )
    broad.write(Path(args.output), terms)
    left_out = ", ".join(f"{count} {why}" for why, count in dropped.items())
    print(f"{len(terms)} terms written to {args.output}; left out: {left_out}")
    return 0


def _cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from moderation import train  # scikit-learn: the train extra, imported only here
    from moderation.scorer import Featurizer

    if not args.dataset and not args.from_verdicts:
        print("moderation train: give --dataset or --from-verdicts (or both)", file=sys.stderr)
        return 2
    kind_map: dict[str, str] = {}
    for pair in args.category_map:
        value, _, kind = pair.partition("=")
        if not value or not kind:
            print(
                f"moderation train: --category-map {pair!r}: use VALUE=CATEGORY[/sub]",
                file=sys.stderr,
            )
            return 2
        kind_map[value] = kind
    normalizer, lexicon = load_prefilter()
    try:
        rows = train.read_rows(
            normalizer,
            Featurizer(lexicon.phonetics, args.bits),
            [Path(p) for p in args.dataset],
            [Path(p) for p in args.from_verdicts],
            text_col=args.text_col,
            label_col=args.label_col,
            kind_col=args.category_col,
            kind_map=kind_map or None,
        )
        trained = train.train(
            rows,
            bits=args.bits,
            c=args.c,
            seed=args.seed,
            name=args.name,
            version=args.model_version,
            category=Category[args.category],
        )
    except DatasetError as error:
        print(f"moderation train: {error}", file=sys.stderr)
        return 2
    output = Path(args.output)
    trained.model.save(output)
    print(
        f"{output}: {trained.rows} rows ({trained.positives} harmful), held-out AUC "
        f"{trained.held_out_auc:.4f}, training data {rows.digest[:19]}"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser. Command and option names are a public interface (other teams'
    scripts call them): add, do not rename."""
    root = argparse.ArgumentParser(prog="moderation", description=__doc__.split("\n")[0])
    root.add_argument("--version", action="version", version=f"moderation {__version__}")
    commands = root.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="serve gRPC until SIGTERM/SIGINT")
    serve_cmd.add_argument(
        "--host", help="address to listen on (default MODERATION_HOST or 127.0.0.1)"
    )
    serve_cmd.add_argument("--port", type=int, help="port (default MODERATION_PORT or 50051)")
    serve_cmd.set_defaults(run=_cmd_serve)

    check = commands.add_parser("check", help="judge texts, one JSON line each")
    check.add_argument("--jurisdiction", "-j", help="policy to apply (default: the server default)")
    check.add_argument("--no-llm", action="store_true", help="never ask the model")
    check.add_argument("texts", nargs="+", metavar="TEXT")
    check.set_defaults(run=_cmd_check)

    policies = commands.add_parser("policies", help="list jurisdictions, versions, categories")
    policies.add_argument("--json", action="store_true", help="print the ListPolicies JSON form")
    policies.set_defaults(run=_cmd_policies)

    batch = commands.add_parser(
        "batch", help="rerun stored content into JSONL answers (resumable after a kill)"
    )
    batch.add_argument(
        "--input",
        required=True,
        help="a .jsonl, .csv or .parquet file, or sqlite:///db?table=T&id=C&text=C",
    )
    batch.add_argument(
        "--output",
        required=True,
        help="answers, one per input row: JSONL, or Parquet for a .parquet name",
    )
    batch.add_argument("--jurisdiction", "-j", help="policy for rows that name none")
    batch.add_argument("--no-llm", action="store_true", help="never ask the model")
    batch.add_argument(
        "--concurrency", type=int, default=32, help="model calls at once (default 32)"
    )
    batch.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming")
    batch.add_argument(
        "--log-items",
        action="store_true",
        help="log a moderation.decided line per item (default: a batch.finished summary only)",
    )
    batch.add_argument(
        "--compare",
        metavar="PREVIOUS",
        help="report what changed since a previous output (.jsonl or .parquet)",
    )
    batch.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local (resumable, default) or ray (a pool of Ray actors, the moderation[ray] "
        "extra; starts afresh)",
    )
    batch.add_argument("--ray-address", help="Ray cluster address (default: a local instance)")
    batch.add_argument("--actors", type=int, default=2, help="Ray actors (default 2)")
    batch.set_defaults(run=_cmd_batch)

    evaluation = commands.add_parser(
        "eval", help="measure the heuristics on a labeled CSV/TSV/JSONL/JSON dataset"
    )
    evaluation.add_argument("--dataset", required=True, help="path to the labeled data")
    evaluation.add_argument("--text-col", help="column holding the text (default: guessed)")
    evaluation.add_argument("--label-col", help="column holding the label (default: guessed)")
    evaluation.add_argument("--jurisdiction", "-j", help="policy to apply (default: GLOBAL)")
    evaluation.add_argument("--limit", type=int, help="read at most this many rows")
    evaluation.set_defaults(run=_cmd_eval)

    training = commands.add_parser(
        "train", help="fit a scorer model file on labelled data and/or past model verdicts"
    )
    training.add_argument(
        "--dataset", action="append", default=[], help="labelled CSV/TSV/JSONL/JSON (repeatable)"
    )
    training.add_argument("--text-col", help="column holding the text (default: guessed)")
    training.add_argument("--label-col", help="column holding the label (default: guessed)")
    training.add_argument(
        "--from-verdicts",
        action="append",
        default=[],
        metavar="CACHE.sqlite",
        help="a verdict cache (MODERATION_CACHE_PATH): learn from the model's past verdicts",
    )
    training.add_argument(
        "--category-col",
        help="column naming the kind of harm of harmful rows (CATEGORY or CATEGORY/sub): "
        "trains category heads",
    )
    training.add_argument(
        "--category-map",
        action="append",
        default=[],
        metavar="VALUE=CATEGORY[/sub]",
        help="translate a --category-col value (repeatable; unmapped values are left out)",
    )
    training.add_argument("--output", required=True, help="the model file to write")
    training.add_argument("--bits", type=int, default=20, help="2**bits feature buckets (20)")
    training.add_argument("--c", type=float, default=8.0, help="inverse regularisation (8)")
    training.add_argument("--seed", type=int, default=0, help="seed of the folds (0)")
    training.add_argument("--name", default="scorer", help="model name in every answer")
    training.add_argument("--model-version", default="1", help="model version in every answer")
    training.add_argument(
        "--category",
        default="HATE",
        choices=[c.name for c in Category],
        help="the category of a score-only label when there are no heads (HATE)",
    )
    training.set_defaults(run=_cmd_train)

    broad_list = commands.add_parser(
        "broad-lexicon",
        help="build a broad word list whose hits only escalate (MODERATION_BROAD_LEXICON_PATH)",
    )
    broad_list.add_argument(
        "--houbb", required=True, help="folder holding houbb/sensitive-word's tagged list"
    )
    broad_list.add_argument("--output", required=True, help="the file to write")
    broad_list.set_defaults(run=_cmd_broad_lexicon)

    health = commands.add_parser("health", help="ask a server's grpc.health.v1; exit 0 if SERVING")
    health.add_argument("--address", help="host:port (default 127.0.0.1:MODERATION_PORT)")
    health.add_argument("--timeout", type=float, default=2.0, help="seconds (default 2)")
    health.add_argument(
        "--tls", action="store_true", help="speak TLS (on by itself beside a TLS server)"
    )
    health.add_argument("--ca", type=Path, help="PEM roots to trust (default: the server's own)")
    health.add_argument("--cert", type=Path, help="PEM client certificate, for mTLS")
    health.add_argument("--key", type=Path, help="PEM key of --cert")
    health.add_argument("--server-name", help="name to expect (default: the certificate's)")
    health.set_defaults(run=_cmd_health)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``moderation`` console script."""
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        trace_ids = log_processor() if tracing_wanted() else None
        configure(settings.log_level, extra=() if trace_ids is None else (trace_ids,))
        return int(args.run(settings, args))
    except ConfigError as error:
        print(f"moderation: configuration error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
