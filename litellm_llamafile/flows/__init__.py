"""Each conversation with a server as a sans-IO flow: one chat request described once (`request.py`) and sent
(`chat.py`), its answer read (`chat_answer.py`), its prompt counted (`counting.py`), text completions and
embeddings."""
