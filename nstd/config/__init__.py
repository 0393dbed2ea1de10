"""YAML config -> validated, resolved objects; every problem reported with its dotted key path.

`schema` is the file's shape (pydantic), `resolve` what a schema cannot say (style files, rule
names, merged parameters), `folders` the folders' relations, `loading` the YAML and the messages.
"""

from nstd.core.errors import ConfigError

from .hours import ActiveHours
from .loading import load_config, problem_lines
from .resolve import Config, Rule
from .schema import ParamsModel

__all__ = ["ActiveHours", "Config", "ConfigError", "ParamsModel", "Rule", "load_config", "problem_lines"]
