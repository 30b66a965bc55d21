"""RemovableHandle: what the register_*_hook methods of modules and optimizers
return (torch.utils.hooks.RemovableHandle's role)."""


class RemovableHandle:
    """remove() unregisters the hook; usable as a context manager that removes it on exit."""

    _next_id = 0

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
