"""How the chart and image checks end: each failure on a line, then PASS or
the count; the exit status CTest reads."""


def finish(failures):
    for failure in failures:
        print("FAIL:", failure)
    print("PASS" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0
