// run_open_set_trial(): one trial searched through SearchIndex, and its
// caller errors (bad dimension, a template of another length) as Statuses.
#include <gtest/gtest.h>

#include <vector>

#include "facerec/eval_open_set.h"

namespace facerec {
namespace {

TEST(OpenSetProtocol, SearchesATrialAndRefusesBadTemplates) {
  // Images 0 and 1 are the gallery of slots 0 and 1; image 2 is a mated
  // probe of slot 0, image 3 a stranger.
  eval::OpenSetTrial trial;
  trial.gallery = {{0, {0}}, {1, {1}}};
  trial.mated = {{2, 0}};
  trial.unknown = {3};
  const std::vector<float> a = {1, 0}, b = {0, 1}, near_a = {0.8f, 0.6f}, far = {-0.6f, -0.8f};
  std::vector<eval::ProbeTemplate> templates = {{a}, {b}, {near_a}, {far}};
  auto out = eval::run_open_set_trial(trial, templates, 2, TemplateRule::kMax, false);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_TRUE((*out)[0].mated);
  EXPECT_EQ((*out)[0].rank, 1);
  EXPECT_NEAR((*out)[0].mate_score, 0.8f, 1e-6);
  EXPECT_FALSE((*out)[1].mated);
  EXPECT_NEAR((*out)[1].top_score, -0.6f, 1e-6);

  EXPECT_EQ(eval::run_open_set_trial(trial, templates, 0, TemplateRule::kMax, false).status().code(),
            ErrorCode::kInvalidArgument);
  const std::vector<float> three = {1, 0, 0};
  templates[1] = {three};  // a gallery template of another length
  EXPECT_EQ(eval::run_open_set_trial(trial, templates, 2, TemplateRule::kMax, false).status().code(),
            ErrorCode::kInvalidArgument);
  templates[1] = {b};
  templates[2] = {three};  // a probe of another length
  EXPECT_EQ(eval::run_open_set_trial(trial, templates, 2, TemplateRule::kMax, false).status().code(),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace facerec
