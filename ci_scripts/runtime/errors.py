"""The one exception a step raises for bad input.

``__main__`` turns it into a single ``error: ...`` line on stderr and a non-zero exit, so a
SageMaker job's failure reason (and the local backend's log) says which file or field is wrong
instead of ending in a traceback. Anything else is a bug and keeps its traceback.
"""


class StepError(Exception):
    """Bad input or environment; the message names the file, field or resource at fault."""
