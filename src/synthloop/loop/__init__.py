"""The loop: the engine (propose, evaluate, record), the search strategies over it, and the budget.

It sits above the contracts (``core``), the machinery (``llm``, ``store``, ``execution``) and
the feedback and oversight rooms, and below the tasks: a task's own loop may use it, the loop
never imports a task.
"""
