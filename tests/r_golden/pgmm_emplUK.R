# Golden values for tests/test_gmm.py: R plm's pgmm on Arellano and Bond's EmplUK panel.
#
# Regenerate (Debian: apt-get install r-cran-plm):
#   Rscript tests/r_golden/pgmm_emplUK.R > tests/r_golden/pgmm_emplUK.csv
# Output: one row per number, columns case,kind,name,value (kind: coef, se, stat); coefficients in
# plm's order (regressors as in the formula, then the period effects).
suppressMessages(library(plm))
data("EmplUK", package = "plm")
f_a <- log(emp) ~ lag(log(emp), 1:2) + lag(log(wage), 0:1) + lag(log(capital), 0:2) +
  lag(log(output), 0:2) | lag(log(emp), 2:99)
f_b <- log(emp) ~ lag(log(emp), 1:2) + lag(log(wage), 0:1) + log(capital) +
  lag(log(output), 0:1) | lag(log(emp), 2:99)
f_bb <- log(emp) ~ lag(log(emp), 1) + lag(log(wage), 0:1) + lag(log(capital), 0:1) |
  lag(log(emp), 2:99) + lag(log(wage), 2:99) + lag(log(capital), 2:99)
fits <- list(
  a1_onestep_robust = list(pgmm(f_a, EmplUK, effect = "twoways", model = "onestep"), TRUE),
  a2_twostep_classical = list(pgmm(f_a, EmplUK, effect = "twoways", model = "twosteps"), FALSE),
  a2_twostep_windmeijer = list(pgmm(f_a, EmplUK, effect = "twoways", model = "twosteps"), TRUE),
  b_twostep_classical = list(pgmm(f_b, EmplUK, effect = "twoways", model = "twosteps"), FALSE),
  b_twostep_windmeijer = list(pgmm(f_b, EmplUK, effect = "twoways", model = "twosteps"), TRUE),
  b_twostep_collapse = list(pgmm(f_b, EmplUK, effect = "twoways", model = "twosteps",
                                 collapse = TRUE), TRUE),
  b_individual_twostep = list(pgmm(f_b, EmplUK, effect = "individual", model = "twosteps"), TRUE),
  b_individual_onestep = list(pgmm(f_b, EmplUK, effect = "individual", model = "onestep"), TRUE),
  bb4_system_onestep = list(pgmm(f_bb, EmplUK, effect = "twoways", model = "onestep",
                                 transformation = "ld"), TRUE),
  bb4_system_twostep = list(pgmm(f_bb, EmplUK, effect = "twoways", model = "twosteps",
                                 transformation = "ld"), TRUE)
)
num <- function(x) sprintf("%.17g", x)
cat("case,kind,name,value\n")
for (case in names(fits)) {
  fit <- fits[[case]][[1]]
  robust <- fits[[case]][[2]]
  s <- suppressWarnings(summary(fit, robust = robust, time.dummies = TRUE))
  b <- coef(fit)
  se <- sqrt(diag(if (robust) vcovHC(fit) else vcov(fit)))
  for (j in seq_along(b)) {
    cat(case, ",coef,", j, ",", num(b[j]), "\n", sep = "")
    cat(case, ",se,", j, ",", num(se[j]), "\n", sep = "")
  }
  stats <- c(sargan = s$sargan$statistic, sargan_df = s$sargan$parameter,
             ar1 = s$m1$statistic, ar2 = s$m2$statistic, n_instruments = ncol(fit$W[[1]]))
  for (k in names(stats)) cat(case, ",stat,", sub("\\..*", "", k), ",", num(stats[[k]]), "\n", sep = "")
}
