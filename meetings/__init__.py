"""The daily partnership meeting: agenda, meeting record and agency actions (issues 4 and 5).

Its tables will live in ``meetings/models.py`` and hang off ``dv.models.Notification`` and ``dv.models.Person``.
"""
