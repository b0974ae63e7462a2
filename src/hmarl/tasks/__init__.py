"""hmarl's built-in tasks, one package each: the worked examples of the task contract."""
