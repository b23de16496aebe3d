"""Server-side jobs of adapter maths: merge, compose and aggregate run by a worker thread of the
server, their results registered through the catalog as new versions."""
