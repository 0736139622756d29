"""The journey pages: the list and the starters (manage), the step editor (steps), the
report and who is inside (people). Each view parses, checks access, calls one service of
journeys.services and answers; the sentences the pages say are made in words."""
