"""DSPy (`dspy.LM`, native tools), unmodified, runs the one-tool task through `llamafile/smollm2`.

    python examples/frameworks/dspy_run.py API_BASE [--variant react|predict]

`react` (default): DSPy's own agent loop, `dspy.ReActV2`, with `ChatAdapter(use_native_function_calling=
True)`: it sends `tools`, runs the calls and hands the results back in the next turn until the model
calls `submit`. `predict`: one `dspy.Predict` with a `dspy.ToolCalls` output, whose calls the program
runs itself (DSPy has no next turn there). DSPy 3.4's `dspy.LM` prefers its own client (lm15) for the
providers lm15 knows; `llamafile/` is not one, so the default engine ("auto") calls LiteLLM.
"""

import sys

from observe import MODEL, TASK, TIMEOUT, count_faces, main


def run(api_base: str, variant: str) -> str:
    import dspy

    lm = dspy.LM(MODEL, api_base=api_base, api_key="none", max_tokens=128, cache=False, timeout=TIMEOUT)
    dspy.configure(lm=lm, adapter=dspy.ChatAdapter(use_native_function_calling=True))
    if variant == "react":
        agent = dspy.ReActV2("question -> answer", tools=[count_faces], max_iters=3)
        return str(agent(question=TASK).answer)

    # Real annotations, not strings (no `from __future__ import annotations` in this file): DSPy
    # resolves a signature's field types at class creation, and "dspy.ToolCalls" names nothing here.
    class Faces(dspy.Signature):
        """Answer the question with the help of the tools."""

        question: str = dspy.InputField()
        tools: list[dspy.Tool] = dspy.InputField()
        answer: str = dspy.OutputField()
        tool_calls: dspy.ToolCalls = dspy.OutputField()

    # DSPy 3.4's ToolCall.execute takes a list of its own `Tool`s (or a name -> function dict), not bare
    # functions: it reads each one's `.name`.
    tools = [dspy.Tool(count_faces)]
    prediction = dspy.Predict(Faces)(question=TASK, tools=tools)
    for call in prediction.tool_calls.tool_calls if prediction.tool_calls else []:
        call.execute(functions=tools)
    return str(prediction.answer)


if __name__ == "__main__":
    sys.exit(main("dspy", run, variants=("react", "predict")))
