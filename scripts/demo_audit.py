"""The audit's teaching demo (`make demo`): train a digit model where half the 7s carry a white square, say how
far it leans on the square, audit its held-out digits, and write the audit to --out (index.html, audit.json).

    python -m scripts.demo_audit [--digit 7] [--row 1] [--col 1] [--size 4] [--share 0.5] [--out demo-audit]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from whylabel import audit
from whylabel.audit import demo
from whylabel.cli.audit import write
from whylabel.models.marked import Mark


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Mark()
    for name in ("digit", "row", "col", "size"):
        parser.add_argument(f"--{name}", type=int, default=getattr(default, name))
    parser.add_argument("--share", type=float, default=default.share, help="share of the digit's images marked")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("demo-audit"))
    args = parser.parse_args(argv)
    mark = Mark(args.digit, args.share, args.row, args.col, args.size)
    clf, report = demo.train(mark, seed=args.seed)
    print(json.dumps(report, indent=2))
    images = demo.images(mark, seed=args.seed + 1)
    with tqdm(total=len(images), desc="mapping", unit="image") as bar:
        result = audit.run(clf, images, progress=lambda n: bar.update(n - bar.n))
    write(result, args.out)
    for cluster in result.flagged():
        marked = sum(result.items[m].group == "marked" for m in cluster.members)
        print(
            f"flagged: {cluster.label!r} cluster {cluster.id}, {len(cluster.members)} images ({marked} marked): "
            f"{cluster.why}"
        )
    print(f"open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
