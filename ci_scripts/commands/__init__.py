"""The GitOps rules, one module per command, written against the Backend interface only.

The CLI imports each module inside its command function, so ``--help`` stays fast.
"""
