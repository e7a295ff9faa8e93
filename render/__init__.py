"""How each command's result reads: rich tables and progress bars for people, JSON for machines.

cli.py parses and calls one job; the functions here turn the job's result into what is printed.
Rendering never changes a result and never decides an exit code.
"""
