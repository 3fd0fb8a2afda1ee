"""The built-in benchmark: procedurally generated vision-language tasks that run offline."""
