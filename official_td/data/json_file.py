"""Reads the JSON side files our commands write (metadata, results)."""

import json
import os


def read(path: str, missing_message: str) -> dict:
  """The JSON object in `path`.

  Args:
    path: a local JSON file.
    missing_message: the error's text if `path` does not exist; it should
      name the file and the command that makes it.

  Raises:
    FileNotFoundError: `path` does not exist, with `missing_message`.
  """
  if not os.path.exists(path):
    raise FileNotFoundError(missing_message)
  with open(path) as f:
    return json.load(f)
