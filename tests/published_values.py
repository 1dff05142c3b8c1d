"""Published reference values shared by several tests, with the printing each one follows.

Wooldridge, *Introductory Econometrics*, Table 17.1 (probit of ``inlf`` on the ``mroz`` data): the
table prints the constant as .270 with standard error (.509). ``shared/reference/published-values.md``
transcribes that standard error as .508. We follow the textbook's printing, .509: it is what the
observed-information (OIM) covariance gives (0.50859), the convention Stata's ``probit`` uses and the
one our probit reports; the expected information would give 0.50809 (.508). Every test that checks
this number compares with :data:`MROZ_PROBIT_CONSTANT_SE` to half a unit in the last printed digit.
"""

MROZ_PROBIT_CONSTANT_SE = 0.509
