"""Requests shaped like a command-driven autonomous agent's: a long system prompt with rules and a
goal, twenty commands with long descriptions and varied argument schemas (enums, bounds, booleans,
arrays, nested objects), and a history with earlier calls and their results. Written for this project;
the wording is our own. Used by tests/test_agent_shaped.py and bench/tool_instructions.py."""

from __future__ import annotations

from typing import Any


def command(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


def text(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


AGENT_COMMANDS: list[dict[str, Any]] = [
    command(
        "web_search",
        "Searches the public web for pages that match a query and returns a numbered list of results, "
        "each with its title, address and a short excerpt. Use it when the answer depends on facts you "
        "are not certain of, on recent events, or on sources you should cite. Prefer precise queries "
        "with distinctive words over whole questions; run several narrow searches rather than one broad one.",
        {
            "query": text("The words to search for, as you would type them into a search engine."),
            "num_results": {
                "type": "integer",
                "minimum": 1,
                "maximum": 10,
                "description": "How many results to return; fewer is faster to read.",
            },
        },
        ["query"],
    ),
    command(
        "read_webpage",
        "Downloads one web page and extracts the information it holds that answers a question you give. "
        "Returns either the extracted passages or, when no question is given, the page's main text "
        "truncated to a readable length, plus the links found on the page. Use it after a search, on the "
        "addresses the search returned; do not guess addresses.",
        {
            "url": text("The full address of the page, including https://."),
            "question": text("What you want to learn from this page, as one precise question."),
            "get_raw_content": {
                "type": "boolean",
                "description": "Return the page's raw text instead of extracted passages.",
            },
        },
        ["url"],
    ),
    command(
        "read_file",
        "Reads a text file from the agent's workspace and returns its content. Binary files are refused. "
        "Paths are relative to the workspace root; paths outside the workspace are rejected. Use it to look "
        "at notes, drafts and data you or the user saved earlier before you change or rely on them.",
        {"filename": text("The path of the file to read, relative to the workspace.")},
        ["filename"],
    ),
    command(
        "write_file",
        "Writes text to a file in the workspace, creating the file and any missing folders, and replacing "
        "whatever the file held before. Use it to save the results of your work so the user can read them "
        "after you finish, and to keep drafts between steps. Write complete content: a partial write "
        "loses what the file held.",
        {
            "filename": text("The path of the file to write, relative to the workspace."),
            "contents": text("The complete text the file should hold afterwards."),
        },
        ["filename", "contents"],
    ),
    command(
        "append_to_file",
        "Adds text to the end of a file in the workspace without touching what is already there; creates "
        "the file if it does not exist. Use it for logs, running notes and lists that grow over several "
        "steps, where rewriting the whole file every time would be wasteful.",
        {
            "filename": text("The path of the file to extend, relative to the workspace."),
            "text": text("The text to add; a newline is not added for you."),
        },
        ["filename", "text"],
    ),
    command(
        "list_folder",
        "Lists the files and folders inside a folder of the workspace, with their sizes and modification "
        "dates. Use it to discover what exists before you read or write, and to check that a file you "
        "wrote is really there.",
        {
            "folder": text("The folder to list, relative to the workspace; '.' is the workspace root."),
            "recursive": {"type": "boolean", "description": "Also list every subfolder's content."},
        },
        ["folder"],
    ),
    command(
        "delete_file",
        "Deletes one file from the workspace. It cannot be undone, so only delete files you created "
        "yourself during this task and no longer need, never the user's own files.",
        {"filename": text("The path of the file to delete, relative to the workspace.")},
        ["filename"],
    ),
    command(
        "execute_python_code",
        "Runs a short Python 3 program in an isolated container with no network access and returns what "
        "it printed to standard output and standard error. Use it for calculations, for transforming "
        "data files in the workspace and for checking facts that code can check. The program must print "
        "its results; return values are not shown. Long-running programs are stopped after a time limit.",
        {
            "code": text("The complete Python source to run."),
            "timeout_seconds": {
                "type": "integer",
                "minimum": 1,
                "maximum": 120,
                "description": "How long the program may run before it is stopped.",
            },
        },
        ["code"],
    ),
    command(
        "execute_shell",
        "Runs one shell command line in the workspace folder and returns its exit code, standard output "
        "and standard error. Only commands on the allow list may run; others are refused with an "
        "explanation. Use it for tools that have no dedicated command, and keep commands short.",
        {"command_line": text("The command line to run, as it would be typed into a shell.")},
        ["command_line"],
    ),
    command(
        "ask_user",
        "Asks the user a question and waits for the answer. Use it only when you cannot go on without "
        "information that only the user has, such as a preference or a missing requirement; do not ask "
        "for things you can find out yourself. Ask one clear question at a time.",
        {"question": text("The question to show the user.")},
        ["question"],
    ),
    command(
        "remember",
        "Stores a fact in long-term memory so that it can be recalled in later steps or later tasks, "
        "even after the conversation history has been shortened. Store facts in your own words, one "
        "fact per call, with a few tags that describe what the fact is about.",
        {
            "fact": text("The fact to store, as one self-contained sentence."),
            "tags": {
                "type": "array",
                "items": {"type": "string"},
                "maxItems": 5,
                "description": "Short keywords for finding the fact again.",
            },
        },
        ["fact"],
    ),
    command(
        "recall",
        "Searches long-term memory for facts stored earlier that are relevant to a query and returns the "
        "best matches with their tags and the date they were stored. Use it at the start of a task to see "
        "what is already known.",
        {
            "query": text("What you want to remember, in a few words."),
            "limit": {"type": "integer", "minimum": 1, "maximum": 20, "description": "At most this many."},
        },
        ["query"],
    ),
    command(
        "add_task",
        "Adds a task to the agent's plan, a list of steps still to be done, so that long pieces of work "
        "can be split into parts and tracked. Give each task a short title and a priority; tasks are "
        "worked on in priority order.",
        {
            "title": text("What the task is, in a few words."),
            "priority": {
                "type": "string",
                "enum": ["high", "medium", "low"],
                "description": "How soon the task should be done.",
            },
            "details": text("Anything a later step needs to know to do the task."),
        },
        ["title", "priority"],
    ),
    command(
        "complete_task",
        "Marks a task of the plan as done and records what came of it. Use it as soon as a task is "
        "finished so the plan stays accurate; give the outcome in one or two sentences.",
        {
            "task_id": {"type": "integer", "minimum": 1, "description": "The number of the task."},
            "outcome": text("What was achieved, or why the task was abandoned."),
        },
        ["task_id", "outcome"],
    ),
    command(
        "summarize_text",
        "Condenses a long text into a summary of the requested length, keeping names, numbers and "
        "conclusions. Use it on long pages and documents before you store or report them, to keep the "
        "history short.",
        {
            "text": text("The text to condense."),
            "max_words": {"type": "integer", "minimum": 10, "maximum": 500, "description": "Length limit."},
            "style": {"type": "string", "enum": ["bullet_points", "paragraph"], "description": "The form."},
        },
        ["text"],
    ),
    command(
        "translate_text",
        "Translates a text into another language, keeping its meaning, its tone and any formatting such "
        "as lists and headings. Names of people and places are kept as they are.",
        {
            "text": text("The text to translate."),
            "target_language": text("The language to translate into, such as 'French' or 'Latin'."),
        },
        ["text", "target_language"],
    ),
    command(
        "send_message",
        "Sends a message to a person or a channel through the messaging service the user has connected, "
        "and returns once it was delivered. Use it only when the goal asks you to notify someone; never "
        "send messages the user did not ask for.",
        {
            "recipient": {
                "type": "object",
                "description": "Who receives the message.",
                "properties": {
                    "kind": {"type": "string", "enum": ["person", "channel"]},
                    "name": {"type": "string"},
                },
                "required": ["kind", "name"],
            },
            "body": text("The message text."),
            "urgent": {"type": "boolean", "description": "Mark the message as urgent."},
        },
        ["recipient", "body"],
    ),
    command(
        "schedule_reminder",
        "Schedules a reminder that brings the agent back to a task at a later time, for work that has to "
        "wait, such as checking a page again tomorrow. The reminder carries a note explaining what to do.",
        {
            "when": text("The date and time, in ISO 8601 form, such as 2026-12-24T09:00."),
            "note": text("What to do when the reminder fires."),
            "repeat": {"type": "string", "enum": ["never", "daily", "weekly"]},
        },
        ["when", "note"],
    ),
    command(
        "create_chart",
        "Draws a chart from a table of numbers and saves it as an image in the workspace. Use it when a "
        "comparison or a trend is easier to see than to read. Each series is a name and its values.",
        {
            "title": text("The chart's title."),
            "kind": {"type": "string", "enum": ["bar", "line", "pie"]},
            "series": {
                "type": "array",
                "maxItems": 6,
                "items": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "string"},
                        "values": {"type": "array", "items": {"type": "number"}, "maxItems": 12},
                    },
                    "required": ["label", "values"],
                },
            },
            "filename": text("Where to save the image, relative to the workspace."),
        },
        ["title", "kind", "series"],
    ),
    command(
        "finish",
        "Ends the task. Call it once the goal is reached, with a summary of what you found or did and "
        "where the user can find the results, or when the goal cannot be reached, explaining why. No "
        "command can run after this one.",
        {"reason": text("A summary of the result, or why the goal could not be reached.")},
        ["reason"],
    ),
]

AGENT_SYSTEM = """You are Quaestor, an autonomous research assistant. You work alone, step by step, \
towards the goal the user gives you, and you decide every step yourself: do not ask the user for \
permission and do not wait for approval.

Your goal: find out what is known about the object or subject the user names, and write a short, \
sourced report into the workspace file report.md.

Rules you always follow:
1. Every step is exactly one command. Choose the command that brings you closest to the goal.
2. Facts you are not sure of must come from a search or a web page, never from memory alone.
3. Keep notes: save what you learn with remember, and save drafts with write_file, so that nothing \
is lost when the history is shortened.
4. Stay inside the workspace. Never delete files you did not create.
5. Your knowledge has a cut-off; recent events need a search.
6. Be efficient: two searches with different words are better than one vague one; do not repeat a \
command that already failed in the same way.
7. When the report is written and checked, call finish with a summary.

Resources: web search and web pages, a workspace of files, long-term memory, a plan of tasks, \
a Python sandbox without network access, and messaging the user has set up.

Performance evaluation: review your past steps to see whether they served the goal; reflect on \
what went wrong and do better; every command has a cost, so reach the goal in as few steps as you \
can."""

AGENT_TASK = "Tell me about Roman dodecahedrons."

# An agent's third turn: it searched, read a result, and now decides the next command.
AGENT_HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": AGENT_SYSTEM},
    {"role": "user", "content": AGENT_TASK},
    {
        "role": "assistant",
        "content": "I should start with a search for sources.",
        "tool_calls": [
            {
                "id": "call_search1",
                "type": "function",
                "function": {"name": "web_search", "arguments": '{"query": "Roman dodecahedron purpose"}'},
            }
        ],
    },
    {
        "role": "tool",
        "tool_call_id": "call_search1",
        "content": "1. Roman dodecahedron - encyclopedia article: small hollow bronze objects with twelve "
        "pentagonal faces, each with a round hole, found from Britain to Hungary, 2nd-4th century AD.\n"
        "2. Museum blog: over a hundred known; no written source mentions them; theories include "
        "knitting tools, survey instruments, calendars and religious objects.",
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_note1",
                "type": "function",
                "function": {
                    "name": "remember",
                    "arguments": '{"fact": "Roman dodecahedra are hollow bronze objects with twelve '
                    'pentagonal faces, 2nd-4th century AD, purpose unknown.", "tags": ["dodecahedron"]}',
                },
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_note1", "content": "Stored as fact 1."},
]

# A few small tools, for the per-tool cost of short definitions.
SMALL_TOOLS: list[dict[str, Any]] = [
    command("get_time", "Current time.", {}, []),
    command("add", "Add two numbers.", {"a": {"type": "number"}, "b": {"type": "number"}}, ["a", "b"]),
    command("echo", "Repeat a text.", {"text": {"type": "string"}}, ["text"]),
    command(
        "set_light",
        "Switch a light.",
        {"room": {"type": "string"}, "on": {"type": "boolean"}},
        ["room", "on"],
    ),
]


def tool_schema(name: str) -> dict[str, Any]:
    """The parameters schema of one of AGENT_COMMANDS."""
    for tool in AGENT_COMMANDS:
        if tool["function"]["name"] == name:
            parameters: dict[str, Any] = tool["function"]["parameters"]
            return parameters
    raise KeyError(name)
