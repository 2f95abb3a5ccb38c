import os

# Servers and commands the tests start never read a developer's .env (ragsite/env_file.py).
os.environ["RAGSITE_ENV_FILE"] = ""
