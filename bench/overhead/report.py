"""What a run prints — the markdown tables, in the order a reader checks
them — and what it writes: the result as JSON beside the plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.overhead.callers import DIRECT, PLAIN
from bench.overhead.cells import IMAGES, with_added
from bench.overhead.figures import fmt, today
from bench.overhead.floor import floor_routes
from bench.overhead.plot import plot
from bench.overhead.targets import targets


def print_all(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(
        f"{m['nproc']} cores, {m['cpu']}, Python {m['python']}, grpcio {m['grpcio']}, "
        f"{m['date']}; loopback, stand-in backend, telemetry on, SQLite ledger\n"
    )
    print_cells(result["cells"])
    print_floor(result["cells"])
    print_standin_choice(result["standin_choice"])
    print_ttfi(result["ttfi"])
    if result.get("streams"):
        print_streams(result["streams"])
    if result.get("streams_2_workers"):
        print_streams(result["streams_2_workers"])
    print_targets(result)
    if result.get("profile"):
        print_profile(result["profile"])


def print_cells(cells: list[dict[str, Any]]) -> None:
    print(
        "| image | route | conc | req/s | p50 ms | p99 ms | added p50 | vs direct "
        "| gateway CPU/req | stand-in CPU/req | caller CPU/req | errors |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in with_added(cells):
        added = "—" if c["route"] == DIRECT else f"{c['added_p50_ms']:+.1f} ms"
        ratio = "—" if c["route"] == DIRECT else f"{c['vs_direct']:.2f}x"
        print(
            f"| {IMAGES[c['image']]} PNG | {c['route']} | {c['concurrency']} | {c['req_s']:,.0f} "
            f"| {c['p50_ms']:.1f} | {c['p99_ms']:.1f} | {added} | {ratio} "
            f"| {fmt(c['gateway_cpu_ms'], ' ms')} | {c['standin_cpu_ms']:.2f} ms "
            f"| {c['caller_cpu_ms']:.2f} ms | {c['errors']} |"
        )


def print_floor(cells: list[dict[str, Any]]) -> None:
    """CPU per request layer by layer (bench.overhead.floor), at c=10."""
    cpu = {(c["image"], c["route"]): c["gateway_cpu_ms"] for c in cells if c["concurrency"] == 10}
    layers = [*floor_routes(), PLAIN]
    if not any((image, layers[0]) in cpu for image in IMAGES):
        return
    print("\n| c=10, CPU per request | " + " | ".join(f"{IMAGES[i]}" for i in IMAGES) + " |")
    print("|---|" + "---:|" * len(IMAGES))
    previous: dict[str, float | None] = dict.fromkeys(IMAGES)
    for route in layers:
        figures = []
        for image in IMAGES:
            value, before = cpu.get((image, route)), previous[image]
            step = f" ({value - before:+.2f})" if value is not None and before is not None else ""
            figures.append(f"{fmt(value, ' ms')}{step}")
            previous[image] = value
        name = "the gateway (provenance off)" if route == PLAIN else route
        print(f"| {name} | " + " | ".join(figures) + " |")


def print_standin_choice(cells: list[dict[str, Any]]) -> None:
    print("\n| stand-in server (direct, 21 KB, c=10) | req/s | p50 ms | its CPU/answer |")
    print("|---|---:|---:|---:|")
    for c in cells:
        print(
            f"| {c['route']} | {c['req_s']:,.0f} | {c['p50_ms']:.2f} "
            f"| {c['standin_cpu_ms']:.3f} ms |"
        )


def print_ttfi(rows: list[dict[str, Any]]) -> None:
    print(
        "\n| provenance | images | p50 ms to first image | p50 ms to the end | first vs 1 image |"
    )
    print("|---|---:|---:|---:|---:|")
    one = {r["provenance"]: r["first_p50_ms"] for r in rows if r["images"] == 1}
    for r in rows:
        print(
            f"| {r['provenance']} | {r['images']} | {r['first_p50_ms']:.1f} "
            f"| {r['all_p50_ms']:.1f} | {r['first_p50_ms'] / one[r['provenance']]:.2f}x |"
        )
    print("(1.39 MB image, stand-in waits 100 ms per answer, one request at a time)")


def print_streams(s: dict[str, Any]) -> None:
    within = fmt(s["all_admitted_s"], " s") if s["all_admitted_s"] else "not all"
    last = fmt(s["last_admitted_s"], " s")
    per = fmt(s["kib_per_stream"], " KiB")
    print(
        "\n| many streams | admitted | all admitted in | last admitted at | dropped "
        "| RSS held | per stream "
        "| health p50/p99 idle | during burst | while held |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    lag = [s[k] for k in ("health_ms_idle", "health_ms_during_burst", "health_ms_while_held")]
    lags = " | ".join(f"{x['p50']:.1f} / {x['p99']:.1f} ms" for x in lag)
    workers = f", {s['workers']} workers" if s.get("workers") else ""
    print(
        f"| {s['streams']:,} (stand-in waits {s['standin_delay_s']:g} s{workers}) "
        f"| {s['admitted']:,} "
        f"| {within} | {last} | {s['dropped'] or 'none'} | {s['rss_held_kib'] / 1024:,.0f} MiB "
        f"| {per} | {lags} |"
    )


def print_targets(result: dict[str, Any]) -> None:
    print("\n| target (issue 12) | provenance off | provenance required | met |")
    print("|---|---:|---:|---|")
    for name, off, req, met in targets(result):
        print(f"| {name} | {off} | {req} | {'—' if met is None else 'yes' if met else 'NO'} |")


def print_profile(profiles: dict[str, Any]) -> None:
    for image, p in profiles.items():
        if "error" in p:
            print(f"\nprofile {image}: {p['error']}")
            continue
        print(f"\nprofile, {image} image, c=10, provenance off ({p['samples']:,} busy samples, "
              f"{p['req_s']:.0f} req/s while py-spy sampled)")  # fmt: skip
        for title in ("threads", "packages"):
            print(f"{title}: " + ", ".join(f"{n} {pct:.0f} %" for n, pct in p[title][:8]))
        print("\n| self % | function (top of stack) | gateway function | inclusive % |")
        print("|---:|---|---|---:|")
        for (sn, sp), (inn, ip) in zip(p["self"], p["inclusive_gateway"], strict=False):
            print(f"| {sp:.1f} | {sn} | {inn} | {ip:.1f} |")


def write(result: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """overhead-<date>.json and .png in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"overhead-{today()}"
    json_path, png_path = stem.with_suffix(".json"), stem.with_suffix(".png")
    json_path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    plot(result, png_path)
    return json_path, png_path
