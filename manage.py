#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
    from ragsite import env_file

    env_file.load()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
