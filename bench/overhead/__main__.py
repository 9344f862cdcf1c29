"""`python -m bench.overhead [--quick] [--streams N] [--profile] ...`."""

from bench.overhead import bench_main, parse_args

if __name__ == "__main__":
    bench_main(parse_args())
