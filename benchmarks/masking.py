"""Masking speed on long messages.

    .venv/bin/python benchmarks/masking.py              # 300 / 3,000 / 10,000 characters
    .venv/bin/python benchmarks/masking.py --json       # one JSON object as well

Figures are medians over `--repeats` runs of one mask call each (jieba loaded
beforehand, as it is in a running service). Target: a 3,000-character message
masks in under 20 ms.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.masking import Masker  # noqa: E402
from service.policy import load_policy  # noqa: E402

SENTENCE = ("我是张伟，订单DD20240315001三天了还没发货，手机13812345678，地址上海市浦东新区张杨路1234号5栋601室。"
            "洗衣机XQG100-B14出现E3故障，师傅说要换电路板，价格2999元太贵了，你们的服务真的很差。")
CUSTOMER = {"name": "李娜", "phone": "13900001111"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    policy = load_policy(ROOT / "knowledge" / "policy.yaml")
    masker = Masker(policy.masking or None)
    masker.mask(SENTENCE)  # jieba loads once, lazily
    rows = []
    for size in (300, 3_000, 10_000):
        text = (SENTENCE * (size // len(SENTENCE) + 1))[:size]
        timings = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            masker.mask(text, CUSTOMER)
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        rows.append({"characters": size, "p50_ms": round(statistics.median(timings), 2),
                     "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 2)})
    print(f"{'characters':>10}  {'p50 ms':>8}  {'p95 ms':>8}")
    for row in rows:
        print(f"{row['characters']:>10}  {row['p50_ms']:>8.2f}  {row['p95_ms']:>8.2f}")
    if args.json:
        print(json.dumps({"masking": rows, "repeats": args.repeats}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
