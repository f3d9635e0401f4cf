"""The ``numrnn`` command.

numrnn demo [--out PREFIX]       vanishing/exploding Jacobian products (the README's demo)
numrnn bench [ARGS...]           forward+backward against torch.nn (needs torch)
"""

import argparse
import runpy
import sys
from pathlib import Path


def _demo(args):
    from . import demo

    demo.run(out_prefix=args.out, T=args.T, batch=args.batch, seed=args.seed)


def _bench(args):
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_models.py"
    if not script.exists():
        sys.exit("numrnn bench needs a source checkout (benchmarks/bench_models.py)")
    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="numrnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="norms of Jacobian products for 4 recurrent networks")
    p.add_argument("--out", default="numrnn-demo", help="prefix of the .nc and .png written")
    p.add_argument("--T", type=int, default=100, help="sequence length")
    p.add_argument("--batch", type=int, default=16, help="number of random input sequences")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)

    p = sub.add_parser("bench", help="benchmark against torch.nn (source checkout)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of bench_models.py")
    p.set_defaults(func=_bench)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
