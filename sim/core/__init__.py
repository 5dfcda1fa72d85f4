"""Infrastructure every layer of the simulator uses: the event log, the per-CPU context and @kfunc frames."""
