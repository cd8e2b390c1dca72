"""A query generator for GenerateQuery's tests, as an operator would configure one with
`--query-generator`: it reads the server's JSON request on standard input, appends it to the file
GENERATOR_LOG names, and answers a statement chosen by words of the prompt (a real one would ask
a language model). Some answers are wrong on purpose, for the server to refuse."""

import json
import os
import sys

request = json.load(sys.stdin)
with open(os.environ["GENERATOR_LOG"], "a") as log:
    log.write(json.dumps(request) + "\n")
store, prompt = request["eventDataStore"], request["prompt"]
answers = {
    "calls by name": f"SELECT eventName, count(*) AS n FROM {store} GROUP BY eventName ORDER BY eventName;",
    "top errors": f"```sql\nSELECT errorCode, count(*) AS n FROM {store}\nWHERE errorCode IS NOT NULL GROUP BY errorCode ORDER BY n DESC\n```",
    "another store": "SELECT count(*) FROM 00000000-0000-4000-8000-000000000000",
    "delete everything": f"DELETE FROM {store}",
    "no such column": f"SELECT noSuchColumn FROM {store}",
}
if "model down" in prompt:
    print("the model is unavailable", file=sys.stderr)
    sys.exit(2)
for words, statement in answers.items():
    if words in prompt:
        print(statement)
        break
