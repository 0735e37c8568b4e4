"""maas on a Ray cluster (`maas serve --ray`): the same app as Ray Serve deployments. A door, like `server/`:
the only package that imports Ray, and only when `--ray` is given."""
