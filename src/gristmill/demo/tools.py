"""The command-line tools demo: a chain of Linux tools, each reading the file the one before
it wrote (``{outputs.STEP}``), over a web server's access log. See docs/demos/tools.md."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gristmill import Command, Inputs, Pipeline


class ToolsParams(BaseModel):
    """Parameters of the command-line tools demo."""

    model_config = {"extra": "forbid"}

    top: int = Field(5, ge=1, le=1000, description="How many of the most requested paths to list")
    errors: str = Field(
        "^5[0-9][0-9]$",
        min_length=1,
        max_length=200,
        description="Status codes that count as errors (an extended regular expression)",
    )


# Lines of the Common Log Format: the path is field 7, the status field 9. Other lines are
# counted and left out; the counts go to the log. A log without requests fails the step.
EXTRACT = """
NF >= 9 { print $7 > "paths.txt"; print $9 > "statuses.txt"; kept++; next }
{ skipped++; print "line " NR " is not a log line, left out" }
END {
    print NR " lines read, " kept + 0 " requests, " skipped + 0 " left out"
    if (kept == 0) {
        print "no line of the input is a request of a web server's log" > "/dev/stderr"
        exit 1
    }
}
"""

extract = Command(
    "extract",
    ["awk", EXTRACT.replace("{", "{{").replace("}", "}}"), "{input}"],
    outputs=["paths.txt", "statuses.txt"],
    timeout=60,
    title="Extract paths and statuses (awk)",
    description="Splits each request of the log into its path and its status code.",
)
sort_paths = Command(
    "sort_paths",
    ["sort", "-o", "{workdir}/sorted.txt", "--", "{outputs.extract.paths.txt}"],
    outputs=["sorted.txt"],
    timeout=60,
    title="Sort the paths (sort)",
)
count_paths = Command(
    "count_paths",
    ["uniq", "-c", "--", "{outputs.sort_paths}", "{workdir}/counts.txt"],
    outputs=["counts.txt"],
    timeout=60,
    title="Count each path (uniq -c)",
)
rank_paths = Command(
    "rank_paths",
    [
        "sort",
        "-k",
        "1,1nr",
        "-k",
        "2,2",
        "-o",
        "{workdir}/ranked.txt",
        "--",
        "{outputs.count_paths}",
    ],
    outputs=["ranked.txt"],
    timeout=60,
    title="Rank the paths (sort -n -r)",
)
top_paths = Command(
    "top_paths",
    ["head", "-n", "{params.top}", "--", "{outputs.rank_paths}"],
    timeout=60,
    title="The most requested paths (head)",
)
# grep exits with 1 when no line matches: a warning here, not a failure (warn_codes).
count_errors = Command(
    "count_errors",
    ["grep", "-c", "-E", "-e", "{params.errors}", "--", "{outputs.extract.statuses.txt}"],
    warn_codes=[1],
    timeout=60,
    title="Count the errors (grep -c)",
)

tools = Pipeline(
    "command-line-tools",
    [extract, sort_paths, count_paths, rank_paths, top_paths, count_errors],
    title="Command-line tools",
    description=(
        "Ranks the paths of a web server's access log and counts its errors with awk, sort, "
        "uniq, head and grep, each reading the file the one before it wrote."
    ),
    inputs=Inputs(kinds=["file", "text", "url"], extensions=["log", "txt"], max_size=50 * 1024**2),
    params=ToolsParams,
)
