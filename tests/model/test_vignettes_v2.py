"""Clinical vignettes for the second-edition model (issue 11): does the model teach a differential?

Each case was written from clinical knowledge and the evidence file
(``shared/clinical/evidence.md``, IDs such as T29 or X13), **independently of the model's
numbers**: the expected leader is what a physiotherapy educator would put first, and a case
stays here even when the model disagrees (the failure is then a finding about the model, to
be routed to whoever owns it, not a reason to edit the case). Only the issue's public
vocabulary is used, so the cases run against any model file that implements it.

The model is ``$KNEEHIP_V2_MODEL`` (a shipped name or a path; default ``knee_hip``, the
shipped second edition). To try a work-in-progress model file::

    KNEEHIP_V2_MODEL=/tmp/knee_hip_wip.yaml python -m pytest tests/model/test_vignettes_v2.py -q

If the model is still a first-edition file (none of the second edition's diagnoses), the
whole module is skipped with that reason; a second-edition file that lacks a node named here
fails (the name is part of the issue's public vocabulary).

Data, one entry per case (a clinician can add one):

- ``VIGNETTES``: ``evidence`` of one patient; ``leads`` the diagnoses a clinician would accept
  as the leader (the first row of ``diagnose(...).origins``); optional ``at_least`` /
  ``at_most`` bounds on posteriors P(present) of diagnoses or mechanisms; ``region_order``
  (the first region more probable than the second, from ``dx.regions``); ``red_flag``
  (a list: those red flags must be reported in ``dx.red_flags``, and a "refer" warning
  given first; ``False``: none reported); ``explained`` (``(finding, region_a, region_b)``:
  in ``dx.explained_by`` the finding is accounted for more by region a's causes than by
  region b's, see :func:`explained_by_region`); ``reason`` with evidence IDs.
- ``CONTRASTS`` ("second expectations"): P(``node`` present) must move in ``direction`` from
  ``before`` to ``after`` (each ``{"evidence", "do"}``), optionally by ``min_change`` /
  at most ``max_change``.
- ``NEGATIVE_TEST_BOUNDS``: adding negative tests must not lower a diagnosis's odds by more
  than the published likelihood ratios allow (the pair's LR- is bounded below by the
  product of the most decisive published LR- of each test; tests probing the same structure
  are, if anything, less decisive together than that product).
"""

from __future__ import annotations

import math
import os

import pytest

import kneehip_bn as kb
from kneehip_bn.errors import KneeHipError

MODEL_NAME = os.environ.get("KNEEHIP_V2_MODEL", "knee_hip")

#: Diagnoses of the second edition's public vocabulary (issue 11).
V2_DIAGNOSES = (
    "knee_osteoarthritis", "meniscal_tear", "acl_rupture", "patellofemoral_pain",
    "knee_overuse_injury", "hip_osteoarthritis", "fai_labral", "gluteal_tendinopathy",
    "upper_lumbar_radiculopathy", "lower_lumbar_radiculopathy", "lumbar_spinal_stenosis",
    "serious_pathology",
)

HIP_DX = ["hip_osteoarthritis", "fai_labral", "gluteal_tendinopathy"]


@pytest.fixture(scope="module")
def spec():
    """The second-edition model under test (skips the module on a first-edition file)."""
    s = kb.load_spec(MODEL_NAME)
    if not any(d in s.nodes for d in V2_DIAGNOSES):
        pytest.skip(f"model {MODEL_NAME!r} is a first-edition file (none of the second "
                    f"edition's diagnoses, e.g. knee_osteoarthritis): set KNEEHIP_V2_MODEL to a "
                    f"second-edition model file")
    return s


# --------------------------------------------------------------------------------------------
# Vignettes: who should lead
# --------------------------------------------------------------------------------------------

VIGNETTES = [
    # ---- knee -------------------------------------------------------------------------------
    {
        "id": "knee_oa_older_classic",
        "evidence": {"age_group": "60_plus", "bmi_group": "30_plus", "knee_pain": "present",
                     "knee_crepitus": "present", "knee_effusion": "present",
                     "pain_worse_with_activity": "present"},
        "leads": ["knee_osteoarthritis"],
        "reason": "Older, obese, activity-related knee pain with crepitus and effusion is "
                  "tibiofemoral OA until shown otherwise (P1 22.9% at 40+, P10 symptomatic 26%; "
                  "effusion in 74% of painful OA knees, T41).",
    },
    {
        "id": "knee_oa_woman_mid_life",
        "evidence": {"age_group": "40_to_59", "sex": "female", "bmi_group": "30_plus",
                     "knee_pain": "present", "knee_crepitus": "present",
                     "pain_on_stairs_or_squatting": "present", "twisting_injury": "absent"},
        "leads": ["knee_osteoarthritis"],
        "reason": "A woman in her 50s with obesity, crepitus and stair pain without injury: "
                  "early knee OA (P1, female:male 1.69).",
    },
    {
        "id": "older_knee_pain_alone",
        "evidence": {"age_group": "60_plus", "knee_pain": "present"},
        "leads": ["knee_osteoarthritis"],
        "reason": "Knee pain alone at 60+: knee OA is by far the commonest cause (P1, P2, P10).",
        "region_order": ("knee", "spine"),
    },
    {
        "id": "meniscal_tear_twist_lock",
        "evidence": {"age_group": "under_40", "activity_level": "high_impact",
                     "knee_pain": "present", "twisting_injury": "present",
                     "knee_locking_catching": "present", "joint_line_tenderness": "present",
                     "mcmurray_test": "positive", "lachman_test": "negative"},
        "leads": ["meniscal_tear"],
        "reason": "Twisting injury, locking/catching, joint-line tenderness and a positive "
                  "McMurray with a stable Lachman: meniscal tear (T32 McMurray 70/71, JLT 63/77; "
                  "T37 composite; T38 Lachman LR- 0.1 argues against ACL).",
    },
    {
        "id": "meniscal_tear_mid_life",
        "evidence": {"age_group": "40_to_59", "knee_pain": "present",
                     "knee_locking_catching": "present", "joint_line_tenderness": "present",
                     "mcmurray_test": "positive"},
        "leads": ["meniscal_tear", "knee_osteoarthritis"],
        "reason": "Mechanical symptoms with JLT and McMurray in mid-life: meniscal tear, often "
                  "degenerative and beside early OA, so either may lead (P12, T32, T37).",
    },
    {
        "id": "acl_rupture_classic",
        "evidence": {"age_group": "under_40", "activity_level": "high_impact",
                     "knee_pain": "present", "twisting_injury": "present",
                     "knee_effusion": "present", "lachman_test": "positive"},
        "leads": ["acl_rupture"],
        "reason": "A pivoting injury in sport with a rapid effusion and a positive Lachman: ACL "
                  "rupture (T38 Lachman LR+ 25).",
    },
    {
        "id": "twist_effusion_negative_lachman",
        "evidence": {"age_group": "under_40", "activity_level": "high_impact",
                     "knee_pain": "present", "twisting_injury": "present",
                     "knee_effusion": "present", "lachman_test": "negative",
                     "joint_line_tenderness": "present", "mcmurray_test": "positive"},
        "leads": ["meniscal_tear"],
        "reason": "Same injury but a negative Lachman (LR- 0.1, T38) and meniscal signs "
                  "(T32): the meniscus, not the ACL.",
    },
    {
        "id": "pfp_young_woman",
        "evidence": {"age_group": "under_40", "sex": "female", "activity_level": "moderate",
                     "knee_pain": "present", "pain_on_stairs_or_squatting": "present",
                     "knee_effusion": "absent", "single_leg_squat_valgus": "present",
                     "twisting_injury": "absent"},
        "leads": ["patellofemoral_pain"],
        "reason": "A young woman with anterior knee pain on stairs and squatting, dynamic "
                  "valgus and no effusion or injury: patellofemoral pain (P11, M17, M18).",
    },
    {
        "id": "pfp_vs_oa_young_with_crepitus",
        "evidence": {"age_group": "under_40", "sex": "female", "knee_pain": "present",
                     "pain_on_stairs_or_squatting": "present", "knee_crepitus": "present",
                     "knee_effusion": "absent"},
        "leads": ["patellofemoral_pain"],
        "reason": "Crepitus is common in young patellofemoral pain; under 40 without effusion "
                  "OA is unlikely (P1 prevalence rises with age; P11).",
    },
    {
        "id": "oa_vs_pfp_older_with_effusion",
        "evidence": {"age_group": "60_plus", "knee_pain": "present",
                     "pain_on_stairs_or_squatting": "present", "knee_crepitus": "present",
                     "knee_effusion": "present"},
        "leads": ["knee_osteoarthritis"],
        "reason": "The same stair pain at 60+ with crepitus and an effusion is tibiofemoral "
                  "OA, not patellofemoral pain (P1, T41).",
    },
    {
        "id": "young_knee_pain_alone",
        "evidence": {"age_group": "under_40", "knee_pain": "present"},
        "leads": ["patellofemoral_pain", "knee_overuse_injury"],
        "reason": "Knee pain alone under 40: patellofemoral pain is the commonest cause "
                  "(P11), overuse tendinopathy/ITB next (P35).",
    },
    {
        "id": "runner_itb_overuse",
        "evidence": {"age_group": "under_40", "activity_level": "high_impact",
                     "knee_pain": "present", "pain_worse_with_activity": "present",
                     "knee_effusion": "absent", "twisting_injury": "absent",
                     "joint_line_tenderness": "absent", "pain_on_stairs_or_squatting": "absent"},
        "leads": ["knee_overuse_injury"],
        "reason": "A runner whose knee pain comes on with mileage, without injury, effusion, "
                  "joint-line or stair pain: ITB syndrome or tendinopathy (P35 ITB 7.9%, P36, "
                  "P37, M22).",
    },
    {
        "id": "jumper_overuse",
        "evidence": {"age_group": "under_40", "activity_level": "high_impact",
                     "knee_pain": "present", "pain_worse_with_activity": "present",
                     "twisting_injury": "absent", "knee_effusion": "absent"},
        "leads": ["knee_overuse_injury", "patellofemoral_pain"],
        "reason": "Activity-related knee pain in high-impact sport without injury: overuse "
                  "(patellar tendinopathy, ITB) or patellofemoral pain (P35-P37, M22).",
    },
    {
        "id": "knee_oa_with_same_side_hip_pain",
        "evidence": {"age_group": "60_plus", "knee_pain": "present", "knee_effusion": "present",
                     "knee_crepitus": "present", "joint_line_tenderness": "present",
                     "hip_pain": "present", "antalgic_gait_observed": "present",
                     "groin_pain": "absent", "hip_internal_rotation_limited": "absent"},
        "leads": ["knee_osteoarthritis"],
        "reason": "The knee carries the signs; hip pain without groin pain or lost rotation "
                  "does not make the hip the origin (T29, T15; M8 links GTPS, not OA, to the "
                  "knee).",
    },
    # ---- hip --------------------------------------------------------------------------------
    {
        "id": "hip_oa_classic",
        "evidence": {"age_group": "60_plus", "hip_pain": "present", "groin_pain": "present",
                     "hip_internal_rotation_limited": "present",
                     "antalgic_gait_observed": "present"},
        "leads": ["hip_osteoarthritis"],
        "reason": "Groin pain and restricted internal rotation at 60+: hip OA (T29 groin 84/70, "
                  "T15 IR restriction, T16 ACR criteria, P7).",
        "region_order": ("hip", "knee"),
    },
    {
        "id": "hip_oa_presenting_as_knee_pain",
        "evidence": {"age_group": "60_plus", "knee_pain": "present", "groin_pain": "present",
                     "hip_internal_rotation_limited": "present", "knee_effusion": "absent",
                     "joint_line_tenderness": "absent"},
        "leads": ["hip_osteoarthritis"],
        "reason": "Knee pain with a quiet knee but groin pain and lost hip rotation: the hip "
                  "referring to the knee, the article's missing direction (X1-X3, X4, X7, T29, "
                  "T15).",
        "region_order": ("hip", "knee"),
        "explained": ("knee_pain", "hip", "knee"),
    },
    {
        "id": "older_knee_pain_negative_knee_signs",
        "evidence": {"age_group": "60_plus", "knee_pain": "present", "knee_effusion": "absent",
                     "joint_line_tenderness": "absent", "knee_crepitus": "absent",
                     "mcmurray_test": "negative", "hip_internal_rotation_limited": "present",
                     "faber_test": "positive"},
        "leads": ["hip_osteoarthritis"],
        "reason": "Every knee sign negative, hip rotation lost and FABER positive: look at the "
                  "hip (X7: 12 of 21 had knee surgery first; T15, T21).",
    },
    {
        "id": "hip_pain_alone_60_plus",
        "evidence": {"age_group": "60_plus", "hip_pain": "present"},
        "leads": HIP_DX,
        "reason": "Hip pain alone at 60+: a hip diagnosis (OA or GTPS) must lead, not the knee "
                  "(P7 symptomatic hip OA 6.2%, P14 GTPS 15-23% of women 50-79, P24).",
        "region_order": ("hip", "knee"),
    },
    {
        "id": "hip_pain_alone_60_plus_knee_pain_free",
        "evidence": {"age_group": "60_plus", "hip_pain": "present", "knee_pain": "absent"},
        "leads": HIP_DX,
        "reason": "As above, and the knee is pain-free: a hip diagnosis leads (P7, P14).",
        "region_order": ("hip", "knee"),
    },
    {
        "id": "gtps_woman_50s",
        "evidence": {"age_group": "40_to_59", "sex": "female", "hip_pain": "present",
                     "lateral_hip_pain": "present", "trochanteric_tenderness": "present",
                     "single_leg_stance_30s": "positive",
                     "resisted_external_derotation": "positive", "groin_pain": "absent"},
        "leads": ["gluteal_tendinopathy"],
        "reason": "A woman in her 50s with lateral hip pain, trochanteric tenderness, pain "
                  "within 30 s of single-leg stance and on resisted external derotation: GTPS "
                  "(P14 OR 3.37 for women; T26 100/97 and 88/97).",
    },
    {
        "id": "gtps_vs_hip_oa_full_rotation",
        "evidence": {"age_group": "60_plus", "sex": "female", "hip_pain": "present",
                     "lateral_hip_pain": "present", "trochanteric_tenderness": "present",
                     "hip_internal_rotation_limited": "absent", "groin_pain": "absent"},
        "leads": ["gluteal_tendinopathy"],
        "reason": "Lateral pain with trochanteric tenderness, full rotation and no groin pain: "
                  "GTPS rather than OA even at 60+ (P14; T15 and T29 argue against OA).",
    },
    {
        "id": "gtps_trendelenburg",
        "evidence": {"age_group": "60_plus", "sex": "female", "lateral_hip_pain": "present",
                     "trochanteric_tenderness": "present", "trendelenburg_sign": "positive",
                     "groin_pain": "absent"},
        "leads": ["gluteal_tendinopathy"],
        "reason": "Lateral hip pain, trochanteric tenderness and a Trendelenburg sign in an "
                  "older woman: gluteal tendinopathy or tear (T25, T27, P14).",
    },
    {
        "id": "hip_oa_not_gtps",
        "evidence": {"age_group": "60_plus", "sex": "male", "hip_pain": "present",
                     "groin_pain": "present", "hip_internal_rotation_limited": "present",
                     "trochanteric_tenderness": "absent", "single_leg_stance_30s": "negative"},
        "leads": ["hip_osteoarthritis"],
        "reason": "An older man with groin pain, lost rotation, no trochanteric tenderness and "
                  "a negative single-leg stance: hip OA, not GTPS (T29, T15, T26).",
    },
    {
        "id": "hip_oa_faber_older",
        "evidence": {"age_group": "60_plus", "groin_pain": "present", "faber_test": "positive",
                     "hip_internal_rotation_limited": "present"},
        "leads": ["hip_osteoarthritis"],
        "reason": "Groin pain, FABER positive and IR restricted at 60+: intra-articular hip, "
                  "which at this age is OA (T21, T15, M9 age <60 LR 0.11 for OA).",
    },
    {
        "id": "fai_young_athlete",
        "evidence": {"age_group": "under_40", "sex": "male", "activity_level": "high_impact",
                     "hip_pain": "present", "groin_pain": "present", "fadir_test": "positive"},
        "leads": ["fai_labral"],
        "reason": "A young male athlete with groin pain and a positive FADIR: FAI or labral "
                  "tear (T22 FADIR sens 0.94-0.99, T30, X8 groin 88%, P16 cam in athletes).",
    },
    {
        "id": "fai_young_with_knee_pain",
        "evidence": {"age_group": "under_40", "activity_level": "high_impact",
                     "knee_pain": "present", "groin_pain": "present", "fadir_test": "positive",
                     "knee_effusion": "absent", "joint_line_tenderness": "absent"},
        "leads": ["fai_labral"],
        "reason": "Knee pain in a young athlete whose groin hurts and FADIR is positive, the "
                  "knee quiet: FAI referring to the knee (X8 knee 27%, T22).",
        "explained": ("knee_pain", "hip", "knee"),
    },
    {
        "id": "fai_vs_oa_young_limited_ir",
        "evidence": {"age_group": "under_40", "activity_level": "high_impact",
                     "groin_pain": "present", "hip_internal_rotation_limited": "present",
                     "fadir_test": "positive"},
        "leads": ["fai_labral"],
        "reason": "Limited IR and a positive FADIR under 40 point to FAI, not OA (M9 age <60 "
                  "LR 0.11 for hip OA; T23 restricted IR LR+ 4.83 in FAI).",
    },
    # ---- spine ------------------------------------------------------------------------------
    {
        "id": "l3_root_anterior_knee_pain",
        "evidence": {"age_group": "40_to_59", "knee_pain": "present",
                     "anterior_thigh_pain": "present", "leg_numbness_tingling": "present",
                     "femoral_nerve_stretch": "positive", "straight_leg_raise": "negative"},
        "leads": ["upper_lumbar_radiculopathy"],
        "reason": "Anterior thigh and knee pain with paraesthesia, a positive femoral nerve "
                  "stretch and a NEGATIVE SLR: an L3 root (T6 FST LR inf for L2-L4, T7; X13 "
                  "anterior thigh 27-29%, knee 7-9%); the SLR tests L4-S1, so a negative one "
                  "must not count against L3 (T1).",
        "explained": ("knee_pain", "spine", "knee"),
    },
    {
        "id": "l3_l4_root_reflex",
        "evidence": {"age_group": "60_plus", "low_back_pain": "present", "knee_pain": "present",
                     "anterior_thigh_pain": "present", "femoral_nerve_stretch": "positive",
                     "patellar_reflex_reduced": "positive", "straight_leg_raise": "negative"},
        "leads": ["upper_lumbar_radiculopathy"],
        "reason": "Back and anterior thigh pain, positive FST and a reduced patellar reflex: "
                  "L3/L4 (T6 FST + patellar reflex LR 7.0; patellar reflex LR inf for L4).",
    },
    {
        "id": "l3_root_no_back_pain",
        "evidence": {"age_group": "40_to_59", "knee_pain": "present",
                     "anterior_thigh_pain": "present", "low_back_pain": "absent",
                     "femoral_nerve_stretch": "positive", "straight_leg_raise": "negative",
                     "knee_effusion": "absent", "joint_line_tenderness": "absent"},
        "leads": ["upper_lumbar_radiculopathy"],
        "reason": "Radicular pain need not come with back pain: a quiet knee, anterior thigh "
                  "pain and a positive FST still point to an upper lumbar root (T6, T7, X13).",
    },
    {
        "id": "l5_s1_sciatica",
        "evidence": {"age_group": "40_to_59", "low_back_pain": "present",
                     "radiating_leg_pain": "present", "leg_numbness_tingling": "present",
                     "straight_leg_raise": "positive", "slump_test": "positive"},
        "leads": ["lower_lumbar_radiculopathy"],
        "reason": "Back pain with pain and tingling below the knee and positive SLR and slump: "
                  "L5/S1 radiculopathy (P32 95% of herniations L4/5-L5/S1; T1, T3, T11).",
    },
    {
        "id": "sciatica_as_buttock_hip_pain",
        "evidence": {"age_group": "40_to_59", "hip_pain": "present", "buttock_pain": "present",
                     "radiating_leg_pain": "present", "straight_leg_raise": "positive",
                     "groin_pain": "absent"},
        "leads": ["lower_lumbar_radiculopathy"],
        "reason": "'Hip pain' that is buttock pain radiating below the knee with a positive SLR "
                  "and no groin pain comes from the spine (buttock is the commonest zone of "
                  "single-root pain maps, X13; SLR T1; no groin pain argues against hip OA, T29).",
    },
    {
        "id": "lower_root_with_knee_pain",
        "evidence": {"age_group": "40_to_59", "low_back_pain": "present", "knee_pain": "present",
                     "radiating_leg_pain": "present", "straight_leg_raise": "positive",
                     "femoral_nerve_stretch": "negative", "knee_effusion": "absent"},
        "leads": ["lower_lumbar_radiculopathy"],
        "reason": "Knee pain in a sciatica with a positive SLR and negative FST: an L5/S1 root "
                  "(X13 knee 6-9% at L5/S1; T1, T6).",
    },
    {
        "id": "lumbar_stenosis_older",
        "evidence": {"age_group": "60_plus", "neurogenic_claudication": "present",
                     "low_back_pain": "present", "buttock_pain": "present",
                     "leg_numbness_tingling": "present"},
        "leads": ["lumbar_spinal_stenosis"],
        "reason": "Leg pain and tingling on walking, eased by sitting, with back and buttock "
                  "pain at 60+: lumbar spinal stenosis (P20 11%, X17, X18).",
    },
    {
        "id": "stenosis_vs_hip_oa",
        "evidence": {"age_group": "60_plus", "hip_pain": "present", "buttock_pain": "present",
                     "neurogenic_claudication": "present", "groin_pain": "absent",
                     "hip_internal_rotation_limited": "absent"},
        "leads": ["lumbar_spinal_stenosis"],
        "reason": "Buttock 'hip' pain with neurogenic claudication, no groin pain and full "
                  "rotation: the spine, not the hip (T29 groin pain separates hip OA from "
                  "stenosis; X19).",
    },
    {
        "id": "hip_oa_vs_stenosis",
        "evidence": {"age_group": "60_plus", "hip_pain": "present", "groin_pain": "present",
                     "hip_internal_rotation_limited": "present",
                     "neurogenic_claudication": "absent", "buttock_pain": "absent"},
        "leads": ["hip_osteoarthritis"],
        "reason": "Groin pain and lost rotation without claudication: the hip (T29, X19 limited "
                  "IR ~14x for hip over spine).",
    },
    # ---- compensation -------------------------------------------------------------------------
    {
        "id": "hip_oa_with_contralateral_knee_pain",
        "evidence": {"age_group": "60_plus", "hip_pain": "present", "groin_pain": "present",
                     "hip_internal_rotation_limited": "present",
                     "contralateral_knee_pain": "present"},
        "leads": ["hip_osteoarthritis"],
        "reason": "Index hip OA with pain in the other knee: the hip leads and the other knee "
                  "is the compensation (M2-M4, M12).",
        "at_least_prior": ["contralateral_knee_overload"],
    },
    {
        "id": "knee_oa_with_contralateral_hip_pain",
        "evidence": {"age_group": "60_plus", "knee_pain": "present", "knee_effusion": "present",
                     "knee_crepitus": "present", "contralateral_hip_pain": "present"},
        "leads": ["knee_osteoarthritis"],
        "reason": "Index knee OA with pain in the other hip: the knee leads; weight shifted to "
                  "the other leg is the article's compensation (M1, small in absolute terms "
                  "M5-M7).",
        "at_least_prior": ["contralateral_hip_overload"],
    },
    # ---- nothing wrong -----------------------------------------------------------------------
    {
        "id": "young_inactive_pain_free",
        "evidence": {"age_group": "under_40", "activity_level": "low", "knee_pain": "absent",
                     "hip_pain": "absent", "low_back_pain": "absent"},
        "at_most": {d: 0.15 for d in V2_DIAGNOSES},
        "red_flag": False,
        "reason": "A young, inactive, pain-free person: no diagnosis is likely (every "
                  "prevalence in section 1a is well below 15% under 40 without symptoms).",
    },
    # ---- red flags -----------------------------------------------------------------------------
    {
        "id": "red_flag_fever_effusion",
        "evidence": {"knee_pain": "present", "knee_effusion": "present",
                     "fever_or_unwell": "present"},
        "leads": ["serious_pathology"],
        "at_least": {"serious_pathology": 0.25},
        "red_flag": ["fever_or_unwell"],
        "reason": "A hot swollen knee in a febrile patient is septic arthritis (or crystal "
                  "arthritis) until proven otherwise: refer now (review section 3 gap 4).",
    },
    {
        "id": "red_flag_night_pain_weight_loss",
        "evidence": {"age_group": "60_plus", "hip_pain": "present",
                     "night_pain_at_rest": "present", "unexplained_weight_loss": "present"},
        "leads": ["serious_pathology"],
        "at_least": {"serious_pathology": 0.25},
        "red_flag": ["night_pain_at_rest", "unexplained_weight_loss"],
        "reason": "Night pain at rest with unexplained weight loss at 60+: tumour or infection "
                  "until proven otherwise (review section 3 gap 4).",
    },
    {
        "id": "red_flag_fall_at_80_unable_to_bear_weight",
        "evidence": {"age_group": "60_plus", "sex": "female", "hip_pain": "present",
                     "groin_pain": "present", "unable_to_bear_weight": "present"},
        "leads": ["serious_pathology"],
        "at_least": {"serious_pathology": 0.25},
        "red_flag": ["unable_to_bear_weight"],
        "reason": "An 80-year-old who cannot bear weight after a fall has an occult hip "
                  "fracture until imaging says otherwise, even if the knee is where it hurts "
                  "(review section 3 gap 4).",
    },
    {
        "id": "red_flag_twist_unable_to_bear_weight",
        "evidence": {"age_group": "under_40", "activity_level": "high_impact",
                     "knee_pain": "present", "twisting_injury": "present",
                     "knee_effusion": "present", "lachman_test": "positive",
                     "unable_to_bear_weight": "present"},
        "leads": ["acl_rupture", "serious_pathology"],
        "red_flag": ["unable_to_bear_weight"],
        "reason": "An ACL-type injury but unable to bear weight: fracture must be excluded, so "
                  "the red flag is reported whatever leads (T38; Ottawa-rule reasoning).",
    },
    {
        "id": "red_flag_reported_even_when_benign_leads",
        "evidence": {"age_group": "60_plus", "knee_pain": "present", "knee_crepitus": "present",
                     "knee_effusion": "present", "night_pain_at_rest": "present"},
        "red_flag": ["night_pain_at_rest"],
        "raises": ["serious_pathology"],
        "reason": "Night pain with otherwise typical knee OA: the diagnosis may stay OA, but a "
                  "red flag is entered, so it must be reported and serious pathology must rise "
                  "above its prior (issue 11, red flags).",
    },
    {
        "id": "no_red_flag_no_warning",
        "evidence": {"age_group": "60_plus", "knee_pain": "present", "knee_crepitus": "present",
                     "fever_or_unwell": "absent", "night_pain_at_rest": "absent"},
        "leads": ["knee_osteoarthritis"],
        "red_flag": False,
        "reason": "Red flags entered as absent are not red flags: no warning (issue 11).",
    },
]


# Where the shipped second edition and the clinician disagree, the case stays and the
# disagreement is recorded here (README, "Vignettes"; the model follows the evidence file):
# strict xfail, so a model that comes to agree turns the test red until this list is updated.
KNOWN_DISAGREEMENTS = {} if MODEL_NAME != "knee_hip" else {
    "l3_root_anterior_knee_pain": (
        "the model leads with upper_lumbar_radiculopathy (0.82) but credits the knee pain 0.35 "
        "to the root and 0.58 to knee causes: X13 puts root pain at the knee in 7-9% of L3/L4 "
        "roots, while knee conditions are common at 40-59"),
    "l3_root_no_back_pain": (
        "without back pain or paraesthesia the model leads with hip OA (0.33; upper lumbar "
        "radiculopathy 0.21, third): anterior thigh pain comes as often from an irritable hip "
        "(X8, 35%) as from an L3/L4 root (X13, 27-29%) and the upper-lumbar prior is small "
        "(P29-P30)"),
    "negative_slr_spares_upper_root": (
        "the model leaves the upper root flat (0.3692 -> 0.3690) instead of raising it: the SLR "
        "does not test L2-L4 and an L5-S1 root does not compete for anterior thigh pain or the "
        "femoral stretch, so there is little for a negative SLR to explain away"),
}


def _cases(cases):
    """Parametrize ``cases``; known disagreements of the shipped model are strict xfails."""
    return [pytest.param(c, id=c["id"], marks=pytest.mark.xfail(
        strict=True, reason="known disagreement: " + KNOWN_DISAGREEMENTS[c["id"]]))
        if c["id"] in KNOWN_DISAGREEMENTS else pytest.param(c, id=c["id"]) for c in cases]


def _dx(spec, evidence, do=None):
    return kb.diagnose(evidence, do=do, model=spec)


def _top(dx, k: int = 4) -> str:
    o = dx.origins
    return ", ".join(f"{n} {o.loc[n, 'posterior']:.3f}" for n in o.index[:k])


def _posteriors(dx) -> dict[str, float]:
    return {**dx.origins["posterior"].to_dict(), **dx.mechanisms["posterior"].to_dict()}


@pytest.mark.parametrize("case", _cases(VIGNETTES))
def test_vignette(spec, case):
    dx = _dx(spec, case["evidence"])
    post = _posteriors(dx)
    why = f"{case['id']}: {case['reason']} | model: {_top(dx)}"
    if "leads" in case:
        assert dx.origins.index[0] in case["leads"], (
            f"expected one of {case['leads']} to lead; {why}")
    for node, p in case.get("at_least", {}).items():
        assert post[node] >= p, f"expected P({node}) >= {p}, found {post[node]:.3f}; {why}"
    for node, p in case.get("at_most", {}).items():
        assert node in post, f"expected diagnosis {node} in the model; {why}"
        assert post[node] <= p, f"expected P({node}) <= {p}, found {post[node]:.3f}; {why}"
    for node in case.get("raises", []):
        pr, po = float(dx.origins.loc[node, "prior"]), float(dx.origins.loc[node, "posterior"])
        assert po > pr, f"expected P({node}) above its prior {pr:.4f}, found {po:.4f}; {why}"
    for node in case.get("at_least_prior", []):
        pr, po = float(dx.mechanisms.loc[node, "prior"]), float(dx.mechanisms.loc[node, "posterior"])
        assert po > pr, f"expected P({node}) above its prior {pr:.4f}, found {po:.4f}; {why}"
    if "region_order" in case:
        if not getattr(dx, "regions", None):
            pytest.skip("diagnose() reports no regions for this model (dx.regions empty)")
        hi, lo = case["region_order"]
        assert dx.regions[hi] > dx.regions[lo], (
            f"expected region {hi} above {lo}, found {dx.regions}; {why}")
    if "explained" in case:
        finding, more, less = case["explained"]
        if finding not in getattr(dx, "explained_by", {}):
            pytest.skip(f"diagnose() gives no explained_by for {finding} in this model")
        by = explained_by_region(spec, dx, dx.explained_by[finding])
        assert by.get(more, 0.0) > by.get(less, 0.0), (
            f"expected {finding} explained more by the {more} than the {less}, found {by} "
            f"(causes {dx.explained_by[finding]}); {why}")


def explained_by_region(spec, dx, causes: dict[str, float]) -> dict[str, float]:
    """``explained_by`` summed per region: a cause that is a diagnosis counts for its region;
    a mechanism (e.g. an "irritable hip" latent) is shared among the regions of the
    diagnoses it descends from, in proportion to their posteriors; the leak is left out."""
    region_of = {d: r for r, ds in spec.regions().items() for d in ds}
    post = dx.origins["posterior"].to_dict()
    out: dict[str, float] = {}
    for cause, p in causes.items():
        if cause not in spec.nodes:
            continue
        seen, stack = set(), [cause]
        while stack:
            v = stack.pop()
            if v not in seen:
                seen.add(v)
                if v not in region_of or v == cause:
                    stack.extend(spec.nodes[v].parents)
        weight: dict[str, float] = {}
        for d in seen:
            if d in region_of:
                weight[region_of[d]] = weight.get(region_of[d], 0.0) + post.get(d, 0.0)
        total = sum(weight.values())
        for r, w in weight.items():
            if total > 0:
                out[r] = out.get(r, 0.0) + p * w / total
    return out


RED_FLAG_CASES = [c for c in VIGNETTES if "red_flag" in c]


@pytest.mark.parametrize("case", RED_FLAG_CASES, ids=[c["id"] for c in RED_FLAG_CASES])
def test_red_flag_reported(spec, case):
    dx = _dx(spec, case["evidence"])
    if not hasattr(dx, "red_flags"):
        pytest.skip("Diagnosis has no red_flags attribute yet (the lead adds it, issue 11)")
    expected = case["red_flag"]
    if expected is False:
        assert dx.red_flags == [], f"{case['id']}: no red flag entered, found {dx.red_flags}"
        assert "refer" not in str(dx).lower().split("\n", 1)[0]
        return
    assert set(expected) <= set(dx.red_flags), (
        f"{case['id']}: expected red flags {expected} reported, found {dx.red_flags}")
    text = str(dx)
    first = text.strip().splitlines()[0].lower()
    assert "refer" in first and "red flag" in first, (
        f"{case['id']}: the warning must come first; found first line {first!r}")
    as_json = dx.to_dict()
    assert set(expected) <= set(as_json["red_flags"])
    assert next(iter(as_json)) == "warning" and "refer" in as_json["warning"].lower(), (
        f"{case['id']}: the JSON form must put the warning first, found keys {list(as_json)}")


# --------------------------------------------------------------------------------------------
# Second expectations: adding a finding moves a diagnosis the way a clinician expects
# --------------------------------------------------------------------------------------------

CONTRASTS = [
    {
        "id": "groin_pain_raises_hip_oa",
        "node": "hip_osteoarthritis",
        "before": {"evidence": {"age_group": "60_plus", "hip_pain": "present"}},
        "after": {"evidence": {"age_group": "60_plus", "hip_pain": "present",
                               "groin_pain": "present"}},
        "direction": "up",
        "reason": "Groin pain is the most discriminating history item for hip OA (T29).",
    },
    {
        "id": "buttock_pain_points_to_spine",
        "node": "lower_lumbar_radiculopathy",
        "before": {"evidence": {"age_group": "40_to_59", "hip_pain": "present"}},
        "after": {"evidence": {"age_group": "40_to_59", "hip_pain": "present",
                               "buttock_pain": "present"}},
        "direction": "up",
        "reason": "Buttock pain points to the spine (X13 buttock 43-45%, X19).",
    },
    {
        "id": "trochanteric_tenderness_raises_gtps",
        "node": "gluteal_tendinopathy",
        "before": {"evidence": {"age_group": "40_to_59", "sex": "female",
                                "lateral_hip_pain": "present"}},
        "after": {"evidence": {"age_group": "40_to_59", "sex": "female",
                               "lateral_hip_pain": "present",
                               "trochanteric_tenderness": "present"}},
        "direction": "up",
        "reason": "Trochanteric tenderness is the defining sign of GTPS (P14, T26).",
    },
    {
        "id": "single_leg_stance_raises_gtps",
        "node": "gluteal_tendinopathy",
        "before": {"evidence": {"age_group": "60_plus", "lateral_hip_pain": "present"}},
        "after": {"evidence": {"age_group": "60_plus", "lateral_hip_pain": "present",
                               "single_leg_stance_30s": "positive"}},
        "direction": "up",
        "reason": "30-s single-leg stance: sensitivity 100%, specificity 97% for GTPS (T26).",
    },
    {
        "id": "female_sex_raises_gtps",
        "node": "gluteal_tendinopathy",
        "before": {"evidence": {"age_group": "60_plus", "sex": "male",
                                "lateral_hip_pain": "present"}},
        "after": {"evidence": {"age_group": "60_plus", "sex": "female",
                               "lateral_hip_pain": "present"}},
        "direction": "up",
        "reason": "GTPS OR 3.37 for women (P14).",
    },
    {
        "id": "full_rotation_lowers_hip_oa",
        "node": "hip_osteoarthritis",
        "before": {"evidence": {"age_group": "60_plus", "groin_pain": "present"}},
        "after": {"evidence": {"age_group": "60_plus", "groin_pain": "present",
                               "hip_internal_rotation_limited": "absent"}},
        "direction": "down",
        "reason": "Full internal rotation argues against hip OA (T15 any-plane sensitivity "
                  "0.86-1.0).",
    },
    {
        "id": "negative_slr_lowers_lower_root",
        "node": "lower_lumbar_radiculopathy",
        "before": {"evidence": {"low_back_pain": "present", "radiating_leg_pain": "present"}},
        "after": {"evidence": {"low_back_pain": "present", "radiating_leg_pain": "present",
                               "straight_leg_raise": "negative"}},
        "direction": "down",
        "reason": "SLR sensitivity ~0.9 for L4-S1: a negative SLR lowers L5/S1 (T1, T3).",
    },
    {
        "id": "negative_slr_spares_upper_root",
        "node": "upper_lumbar_radiculopathy",
        "before": {"evidence": {"knee_pain": "present", "anterior_thigh_pain": "present",
                                "femoral_nerve_stretch": "positive"}},
        "after": {"evidence": {"knee_pain": "present", "anterior_thigh_pain": "present",
                               "femoral_nerve_stretch": "positive",
                               "straight_leg_raise": "negative"}},
        "direction": "up",
        "reason": "The SLR does not test L2-L4: a negative SLR rules out the competing lower "
                  "root, so the upper root becomes more (not less) likely (T1 vs T6/T7).",
    },
    {
        "id": "femoral_stretch_raises_upper_root",
        "node": "upper_lumbar_radiculopathy",
        "before": {"evidence": {"knee_pain": "present", "anterior_thigh_pain": "present"}},
        "after": {"evidence": {"knee_pain": "present", "anterior_thigh_pain": "present",
                               "femoral_nerve_stretch": "positive"}},
        "direction": "up",
        "reason": "FST LR inf for L2-L4 in Suri (T6); slump knee bend 100/83 (T7).",
    },
    {
        "id": "patellar_reflex_raises_upper_root",
        "node": "upper_lumbar_radiculopathy",
        "before": {"evidence": {"low_back_pain": "present", "anterior_thigh_pain": "present"}},
        "after": {"evidence": {"low_back_pain": "present", "anterior_thigh_pain": "present",
                               "patellar_reflex_reduced": "positive"}},
        "direction": "up",
        "reason": "A reduced patellar reflex: LR inf for L4 (T6).",
    },
    {
        "id": "claudication_raises_stenosis",
        "node": "lumbar_spinal_stenosis",
        "before": {"evidence": {"age_group": "60_plus", "buttock_pain": "present"}},
        "after": {"evidence": {"age_group": "60_plus", "buttock_pain": "present",
                               "neurogenic_claudication": "present"}},
        "direction": "up",
        "reason": "Neurogenic claudication is the hallmark of stenosis (P20, X17).",
    },
    {
        "id": "negative_lachman_lowers_acl",
        "node": "acl_rupture",
        "before": {"evidence": {"age_group": "under_40", "twisting_injury": "present",
                                "knee_effusion": "present"}},
        "after": {"evidence": {"age_group": "under_40", "twisting_injury": "present",
                               "knee_effusion": "present", "lachman_test": "negative"}},
        "direction": "down",
        "reason": "Lachman LR- 0.1 (T38).",
    },
    {
        "id": "mcmurray_raises_meniscal_tear",
        "node": "meniscal_tear",
        "before": {"evidence": {"knee_pain": "present", "twisting_injury": "present"}},
        "after": {"evidence": {"knee_pain": "present", "twisting_injury": "present",
                               "mcmurray_test": "positive"}},
        "direction": "up",
        "reason": "McMurray 70/71 pooled (T32), LR+ 2.5 (T35).",
    },
    {
        "id": "effusion_lowers_pfp",
        "node": "patellofemoral_pain",
        "before": {"evidence": {"age_group": "under_40", "knee_pain": "present",
                                "pain_on_stairs_or_squatting": "present"}},
        "after": {"evidence": {"age_group": "under_40", "knee_pain": "present",
                               "pain_on_stairs_or_squatting": "present",
                               "knee_effusion": "present"}},
        "direction": "down",
        "reason": "Patellofemoral pain has no effusion: an effusion points to an intra-articular "
                  "lesion and explains the pain away (T40, T41).",
    },
    {
        "id": "age_raises_knee_oa",
        "node": "knee_osteoarthritis",
        "before": {"evidence": {"age_group": "under_40", "knee_pain": "present"}},
        "after": {"evidence": {"age_group": "60_plus", "knee_pain": "present"}},
        "direction": "up",
        "reason": "Knee OA prevalence rises steeply with age (P1 16.0% at 15+ vs 22.9% at 40+).",
    },
    {
        "id": "obesity_raises_knee_oa",
        "node": "knee_osteoarthritis",
        "before": {"evidence": {"age_group": "60_plus", "bmi_group": "under_25"}},
        "after": {"evidence": {"age_group": "60_plus", "bmi_group": "30_plus"}},
        "direction": "up",
        "reason": "Obesity is the main modifiable risk factor for knee OA (clinical knowledge; "
                  "no row of the evidence file gives the figure).",
    },
    {
        "id": "knee_oa_raises_hip_oa",
        "node": "hip_osteoarthritis",
        "before": {"evidence": {"age_group": "60_plus", "knee_osteoarthritis": "absent"}},
        "after": {"evidence": {"age_group": "60_plus", "knee_osteoarthritis": "present"}},
        "direction": "up",
        "reason": "A history of knee OA raises the likelihood of hip OA (M9 LR 2.1): shared "
                  "causes such as generalised OA.",
    },
    {
        "id": "hip_oa_refers_to_knee",
        "node": "knee_pain",
        "before": {"do": {"hip_osteoarthritis": "absent"}},
        "after": {"do": {"hip_osteoarthritis": "present"}},
        "direction": "up",
        "min_change": 0.05,
        "reason": "Hip OA causes ipsilateral knee pain: 52-65% before THA, about half of it "
                  "resolving after THA (X1-X3), so at least 5 points of knee pain are the hip's.",
    },
    {
        "id": "hip_oa_loads_contralateral_knee",
        "node": "contralateral_knee_pain",
        "before": {"do": {"hip_osteoarthritis": "absent"}},
        "after": {"do": {"hip_osteoarthritis": "present"}},
        "direction": "up",
        "reason": "Hip OA loads the other knee (M2-M4; M12 17% new contralateral knee pain).",
    },
    {
        "id": "treating_knee_changes_hip_pain_little",
        "node": "hip_pain",
        "before": {"evidence": {"age_group": "60_plus"}, "do": {"knee_osteoarthritis": "absent"}},
        "after": {"evidence": {"age_group": "60_plus"}, "do": {"knee_osteoarthritis": "present"}},
        "direction": "up",
        "max_change": 0.05,
        "reason": "The gait route exists (M8, M11) but no study shows treating the knee relieves "
                  "the hip, and M10 found lower hip load on the painful side: the causal effect "
                  "of knee OA on hip pain at 60+ is at most 5 points (issue 11: the first "
                  "edition's ~16% of hip pain is an effect no study shows).",
    },
    {
        "id": "fever_raises_serious",
        "node": "serious_pathology",
        "before": {"evidence": {"knee_pain": "present", "knee_effusion": "present"}},
        "after": {"evidence": {"knee_pain": "present", "knee_effusion": "present",
                               "fever_or_unwell": "present"}},
        "direction": "up",
        "min_change": 0.1,
        "reason": "Fever with an effusion: septic or crystal arthritis (review gap 4).",
    },
    {
        "id": "contralateral_hip_pain_suggests_overload",
        "node": "contralateral_hip_overload",
        "before": {"evidence": {"age_group": "60_plus", "knee_osteoarthritis": "present"}},
        "after": {"evidence": {"age_group": "60_plus", "knee_osteoarthritis": "present",
                               "contralateral_hip_pain": "present"}},
        "direction": "up",
        "reason": "With index knee OA, pain in the other hip makes overload of that hip more "
                  "likely (M1).",
    },
]


def p_present(spec, node: str, evidence=None, do=None) -> float:
    """P(node = present/positive | evidence, do) from the public API."""
    s = kb.query(node, evidence or {}, do=do or {}, model=spec)
    return float(s["positive" if "positive" in s.index else "present"])


@pytest.mark.parametrize("case", _cases(CONTRASTS))
def test_contrast(spec, case):
    before = p_present(spec, case["node"], **case["before"])
    after = p_present(spec, case["node"], **case["after"])
    change = after - before if case["direction"] == "up" else before - after
    why = f"{case['id']}: {case['reason']} | P({case['node']}) {before:.4f} -> {after:.4f}"
    assert change > 0, f"expected {case['direction']}; {why}"
    assert change >= case.get("min_change", 0.0), f"expected a change >= {case['min_change']}; {why}"
    assert change <= case.get("max_change", 1.0), f"expected a change <= {case['max_change']}; {why}"


# --------------------------------------------------------------------------------------------
# Negative tests lower a diagnosis, but no more than the published evidence allows
# --------------------------------------------------------------------------------------------

NEGATIVE_TEST_BOUNDS = [
    {
        "id": "negative_fadir_full_ir_fai",
        "node": "fai_labral",
        "base": {"age_group": "under_40", "activity_level": "high_impact",
                 "hip_pain": "present", "groin_pain": "present"},
        "negatives": {"fadir_test": "negative", "hip_internal_rotation_limited": "absent"},
        # the most decisive published LR- of each test: FADIR 0.09 (T23's lowest, FAI
        # syndrome; T22's sens 0.94-0.99 at DOR 5.7-7.8 gives only 0.14-0.18), restricted
        # IR 0.76 (T23); their product assumes independence, the most decisive case
        "min_lr": 0.09 * 0.76,
        "reason": "A negative FADIR plus full IR must not divide FAI/labral odds by more than "
                  "1/(0.09 x 0.76) = 14.6 (T22, T23); the first edition divided hip pathology "
                  "odds by ~25 (0.47 -> 0.035).",
    },
    {
        "id": "negative_fadir_full_ir_fai_mid_life",
        "node": "fai_labral",
        "base": {"age_group": "40_to_59", "hip_pain": "present", "groin_pain": "present"},
        "negatives": {"fadir_test": "negative", "hip_internal_rotation_limited": "absent"},
        "min_lr": 0.09 * 0.76,
        "reason": "The same bound in mid-life (T22, T23).",
    },
    {
        "id": "negative_slr_slump_lower_root",
        "node": "lower_lumbar_radiculopathy",
        "base": {"age_group": "40_to_59", "low_back_pain": "present",
                 "radiating_leg_pain": "present"},
        "negatives": {"straight_leg_raise": "negative", "slump_test": "negative"},
        # SLR LR- 0.10/0.23 = 0.43 (T1; T3 gives 0.44); slump sens 0.70, spec 0.38 ->
        # LR- 0.79 (T11): product 0.34
        "min_lr": (0.10 / 0.23) * (0.30 / 0.38),
        "reason": "A negative SLR and slump must not divide L5/S1 odds by more than "
                  "1/(0.43 x 0.79) = 2.9 (T1, T3, T11): both probe neural tension.",
    },
]


def _odds(p: float) -> float:
    return p / (1.0 - p) if p < 1.0 else math.inf


@pytest.mark.parametrize("case", NEGATIVE_TEST_BOUNDS, ids=[c["id"] for c in NEGATIVE_TEST_BOUNDS])
def test_negative_tests_not_annihilating(spec, case):
    before = p_present(spec, case["node"], case["base"])
    after = p_present(spec, case["node"], {**case["base"], **case["negatives"]})
    lr = _odds(after) / _odds(before)
    why = (f"{case['id']}: {case['reason']} | P({case['node']}) {before:.4f} -> {after:.4f}, "
           f"effective LR- {lr:.3f}")
    assert after < before, f"expected the negative tests to lower it; {why}"
    assert lr >= case["min_lr"], f"expected effective LR- >= {case['min_lr']:.3f}; {why}"


# --------------------------------------------------------------------------------------------
# Scope: adults only
# --------------------------------------------------------------------------------------------

UNDER_18 = [
    pytest.param({"age": "15"}, id="age_15"),
    pytest.param({"age": 12}, id="age_12_number"),
    pytest.param({"age_group": "15"}, id="age_group_15"),
    pytest.param({"age_group": "under_16"}, id="age_group_under_16"),
    pytest.param({"age_group": "adolescent"}, id="age_group_adolescent"),
]


def _check_refusal(msg: str) -> None:
    low = msg.lower()
    assert "adult" in low, f"the error must say the model is for adults: {msg}"
    assert "scfe" in low and "perthes" in low, f"the error must name SCFE and Perthes: {msg}"
    assert "\n" not in msg.strip(), f"one line expected: {msg!r}"


@pytest.mark.parametrize("evidence", UNDER_18)
def test_under_18_refused(spec, evidence):
    if not spec.scope:
        pytest.skip(f"model {MODEL_NAME!r} has no scope block (min_age) yet")
    with pytest.raises(KneeHipError) as err:
        kb.diagnose({**evidence, "knee_pain": "present"}, model=spec)
    _check_refusal(str(err.value))


def test_under_18_refused_cli(spec, capsys):
    if not spec.scope:
        pytest.skip(f"model {MODEL_NAME!r} has no scope block (min_age) yet")
    from kneehip_bn.cli import main

    code = main(["diagnose", "--model", MODEL_NAME, "-e", "age=15", "-e", "knee_pain=present"])
    err = capsys.readouterr().err.strip()
    assert code == 1, err
    assert "Traceback" not in err
    _check_refusal(err.splitlines()[-1])


def test_adult_age_accepted(spec):
    if not spec.scope:
        pytest.skip(f"model {MODEL_NAME!r} has no scope block (min_age) yet")
    dx = kb.diagnose({"age": "67", "hip_pain": "present"}, model=spec)
    assert dx.evidence.get("age_group") == "60_plus", dx.evidence


def test_vignette_count():
    assert len(VIGNETTES) >= 40, len(VIGNETTES)
    assert len({c["id"] for c in VIGNETTES + CONTRASTS + NEGATIVE_TEST_BOUNDS}) == (
        len(VIGNETTES) + len(CONTRASTS) + len(NEGATIVE_TEST_BOUNDS))
