# Golden values for tests/test_survey.py, made with R's survey package (Lumley) on its `api` data
# (California Academic Performance Index samples, distributed with the package).
#
# Regenerate (Debian: apt-get install r-cran-survey) from the repository root with
#     Rscript tests/golden/survey/make_golden.R
# It writes, beside itself: apistrat.csv and apiclus1.csv (the columns the tests use) and
# results.csv (case, term, estimate, std_error, df). The tests read these files, so they run without
# R; when Rscript is present a test runs this script again into a temporary folder and compares.
suppressPackageStartupMessages(library(survey))
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[1] else dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)))
data(api)
cols <- c("snum", "dnum", "cnum", "stype", "api00", "api99", "ell", "meals", "mobility", "enroll",
          "acs.k3", "sch.wide", "awards", "pw", "fpc")
strat <- apistrat[, cols]
clus1 <- apiclus1[, cols]
write.csv(strat, file.path(out, "apistrat.csv"), row.names = FALSE, na = "")
write.csv(clus1, file.path(out, "apiclus1.csv"), row.names = FALSE, na = "")

rows <- list()
add <- function(case, est, se, df = NA) {
  rows[[length(rows) + 1]] <<- data.frame(case = case, term = names(est), estimate = unname(est),
                                         std_error = unname(se), df = df)
}
from_stat <- function(case, s) add(case, coef(s), SE(s))
from_glm <- function(case, m) {
  add(case, coef(m), sqrt(diag(vcov(m))), m$df.residual)
}

dstrat <- svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = strat)
dclus1 <- svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = clus1)
dstrat_nofpc <- svydesign(id = ~1, strata = ~stype, weights = ~pw, data = strat)
# stratified and clustered: districts within school types (a district id recurs across types: nest)
dstratclus <- svydesign(id = ~dnum, strata = ~stype, weights = ~pw, data = strat, nest = TRUE)

from_stat("strat_mean_api00", svymean(~api00, dstrat))
from_stat("strat_total_enroll", svytotal(~enroll, dstrat))
from_stat("strat_share_awards", svymean(~awards, dstrat))
from_stat("strat_nofpc_mean_api00", svymean(~api00, dstrat_nofpc))
from_stat("clus1_mean_api00", svymean(~api00, dclus1))
from_stat("clus1_total_enroll", svytotal(~enroll, dclus1))
from_stat("stratclus_mean_api00", svymean(~api00, dstratclus))
by <- svyby(~api00, ~awards, dstrat, svymean)
add("strat_mean_api00_by_awards", setNames(coef(by), paste0("awards=", names(coef(by)))),
    setNames(SE(by), paste0("awards=", names(coef(by)))))
byc <- svyby(~api00, ~awards, dclus1, svymean)
add("clus1_mean_api00_by_awards", setNames(coef(byc), paste0("awards=", names(coef(byc)))),
    setNames(SE(byc), paste0("awards=", names(coef(byc)))))
byt <- svyby(~enroll, ~awards, dclus1, svytotal)
add("clus1_total_enroll_by_awards", setNames(coef(byt), paste0("awards=", names(coef(byt)))),
    setNames(SE(byt), paste0("awards=", names(coef(byt)))))

from_glm("strat_ols", svyglm(api00 ~ ell + meals + mobility, design = dstrat))
from_glm("clus1_ols", svyglm(api00 ~ ell + meals + mobility, design = dclus1))
from_glm("stratclus_ols", svyglm(api00 ~ ell + meals + mobility, design = dstratclus))
# rows with a missing regressor leave the estimation sample but not the design (domain estimation)
from_glm("strat_ols_missing", svyglm(api00 ~ ell + acs.k3, design = dstrat))
# school type as dummies; the tests absorb it as a fixed effect and compare the slopes
from_glm("clus1_ols_stype", svyglm(api00 ~ ell + meals + stype, design = dclus1))
# a domain: elementary schools, the variance keeps every sampled district
from_glm("clus1_ols_domain_E", svyglm(api00 ~ ell + meals, design = subset(dclus1, stype == "E")))
from_stat("clus1_mean_api00_domain_E", svymean(~api00, subset(dclus1, stype == "E")))
# iterated to a tight tolerance (R's default stops IRLS at a relative deviance change of 1e-8, and
# takes the covariance from the working weights of the iteration before the last)
tight <- glm.control(epsilon = 1e-14, maxit = 100)
from_glm("strat_logit", svyglm(I(sch.wide == "Yes") ~ ell + meals, design = dstrat, family = quasibinomial(),
                               control = tight))
from_glm("clus1_logit", svyglm(I(sch.wide == "Yes") ~ ell + meals, design = dclus1, family = quasibinomial(),
                               control = tight))
from_glm("strat_probit", svyglm(I(sch.wide == "Yes") ~ ell + meals, design = dstrat,
                                family = quasibinomial(link = "probit"), control = tight))

# a stratum with a single PSU: high schools of one district only
lone <- strat[strat$stype != "H" | strat$dnum == 401, ]
for (opt in c("adjust", "average", "remove", "certainty")) {
  options(survey.lonely.psu = opt)
  d <- svydesign(id = ~dnum, strata = ~stype, weights = ~pw, data = lone, nest = TRUE)
  from_stat(paste0("lonely_", opt, "_mean_api00"), svymean(~api00, d))
  from_glm(paste0("lonely_", opt, "_ols"), svyglm(api00 ~ ell + meals, design = d))
}
options(survey.lonely.psu = "fail")

res <- do.call(rbind, rows)
write.csv(res, file.path(out, "results.csv"), row.names = FALSE)
cat(sprintf("survey %s: %d values written to %s\n", as.character(packageVersion("survey")), nrow(res), out))
