# Golden values for tests/test_fixes_issue11.py: R plm's Hausman test (phtest) of the within
# against the Swamy-Arora random-effects model on Baltagi's Grunfeld data (plm::Grunfeld, the
# same data as ce.datasets.grunfeld()).
#
# Regenerate (Debian: apt-get install r-cran-plm):
#   Rscript tests/r_golden/hausman_grunfeld.R > tests/r_golden/hausman_grunfeld.csv
suppressMessages(library(plm))
data("Grunfeld", package = "plm")
fe <- plm(inv ~ value + capital, data = Grunfeld, model = "within")
re <- plm(inv ~ value + capital, data = Grunfeld, model = "random")
h <- phtest(fe, re)
cat("name,value\n")
cat("statistic,", sprintf("%.17g", h$statistic), "\n", sep = "")
cat("df,", h$parameter, "\n", sep = "")
h1 <- phtest(plm(inv ~ value, data = Grunfeld, model = "within"),
             plm(inv ~ value, data = Grunfeld, model = "random"))
cat("statistic_value_only,", sprintf("%.17g", h1$statistic), "\n", sep = "")
