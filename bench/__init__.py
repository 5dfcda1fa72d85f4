"""trapscope benchmarks: run them all with ``make bench`` (``python -m bench``). See bench/README.md."""
