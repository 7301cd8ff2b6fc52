"""The one error type for bad data: its message is one line, "<file>: <what is wrong>"."""


class DataError(Exception):
    def __init__(self, path, problem):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")
