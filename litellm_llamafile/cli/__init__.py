"""Commands: the proxy yaml generator, the template report."""
