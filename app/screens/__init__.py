"""One screen per module: runs (home), run_detail, configs, launch, compare, query."""
