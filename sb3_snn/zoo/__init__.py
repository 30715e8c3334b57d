"""The runner library on rl_zoo3: the registry's algorithms in the zoo's tables, experiment folders, resumable training."""
