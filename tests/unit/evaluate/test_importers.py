"""Importers that refuse to guess: tiers chosen by name, unscored rows refused with their row
and column (or dropped on request, counted), and every malformed file a one-line error with
exit code 2, never a traceback (property-tested on generated files)."""

import io
import json
import pickle
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierserve.cli import main
from tierserve.errors import ConfigError
from tierserve.evaluate.importers import TierChoice, read_routellm_csv, read_routerbench
from tierserve.evaluate.judged import read_judged
from tierserve.evaluate.outcomes import OutcomeSet

WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
WORDS = st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=30).map(str.strip).filter(bool)


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def routellm_csv(prompts: list[str], cells: list[tuple[str, str]]) -> str:
    lines = [f"prompt,{WEAK},{STRONG},{WEAK}_response,{STRONG}_response"]
    lines += [
        f"{p},{w},{s},answer {i},answer {i}"
        for i, (p, (w, s)) in enumerate(zip(prompts, cells, strict=True))
    ]
    return "\n".join(lines) + "\n"


def routerbench_csv(rows: int, models: tuple[str, ...] = ("a", "b", "c")) -> str:
    header = ["sample_id", "prompt", "eval_name"]
    for model in models:
        header += [model, f"{model}|total_cost"]
    lines = [",".join(header)]
    for i in range(rows):
        cells = [f"s{i}", f"question {i}", "mmlu"]
        for rank, _ in enumerate(models):
            cells += [str((i + rank) % 2), f"{0.001 * (rank + 1):.4f}"]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def judgement(question: int, model: str, score: object, turn: int = 1) -> str:
    prompt = f"[Question]\nWhat is {question} squared?\n\n[The Start of Assistant's Answer]\nx"
    item = {"question_id": question, "model": model, "judge": ["gpt-4", "single-v1"],
            "user_prompt": prompt, "score": score, "turn": turn}  # fmt: skip
    return json.dumps(item)


def judged_jsonl(questions: int) -> str:
    lines = [
        judgement(q, m, 1 + (q * 3 + len(m)) % 10) for q in range(questions) for m in (WEAK, STRONG)
    ]
    return "\n".join(lines) + "\n"


# -- choosing tiers ----------------------------------------------------------------------------


def test_a_file_of_many_models_is_refused_until_the_tiers_are_named(tmp_path: Path) -> None:
    table = tmp_path / "routerbench.csv"
    table.write_text(routerbench_csv(4))
    with pytest.raises(ConfigError, match=r"has 3 models.*not guessed") as refused:
        read_routerbench(table)
    assert "--tiers" in str(refused.value)
    imported = read_routerbench(table, choice=TierChoice(tiers=("c", "a")))
    assert imported.outcomes.tiers == ("c", "a")  # the order given, not the price order
    assert imported.notes == ["tiers as named: c, a"]
    with pytest.raises(ConfigError, match="has no model 'z'"):
        read_routerbench(table, choice=TierChoice(weak="a", strong="z"))


def test_two_models_are_ordered_by_cost_and_the_report_says_so(tmp_path: Path) -> None:
    path = tmp_path / "pair.csv"
    path.write_text(routellm_csv(["q one", "q two"], [("True", "True"), ("False", "True")]))
    imported = read_routellm_csv(path)
    assert imported.outcomes.tiers == (WEAK, STRONG)
    assert "ordered by mean cost" in imported.notes[0]
    swapped = read_routellm_csv(path, choice=TierChoice(weak=STRONG, strong=WEAK))
    assert swapped.outcomes.tiers == (STRONG, WEAK)


def test_a_chosen_model_without_a_cost_column_is_named(tmp_path: Path) -> None:
    table = tmp_path / "routerbench.csv"
    table.write_text(routerbench_csv(2).replace("c|total_cost", "c|cost"))
    with pytest.raises(ConfigError, match=r"model 'c' has no cost column 'c\|total_cost'"):
        read_routerbench(table, choice=TierChoice(tiers=("a", "c")))


# -- unscored rows -----------------------------------------------------------------------------


def test_a_blank_score_is_refused_naming_row_and_column_or_dropped_and_counted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pair.csv"
    path.write_text(
        routellm_csv(
            ["q one", "q two", "q three"], [("True", "True"), ("", "True"), ("False", "x")]
        )
    )
    with pytest.raises(ConfigError, match=rf"row 3, column '{WEAK}': blank"):
        read_routellm_csv(path)
    dropped = read_routellm_csv(path, drop_unscored=True)
    assert dropped.dropped == 2 and len(dropped.outcomes.rows) == 1
    code, out, err = cli(
        "eval",
        "import",
        "routellm",
        str(path),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--drop-unscored",
    )
    assert code == 0 and "1 rows, 2 rows dropped unscored" in out and not err


def test_routerbench_scores_outside_zero_to_one_are_refused_not_clamped(tmp_path: Path) -> None:
    table = tmp_path / "routerbench.csv"
    table.write_text(routerbench_csv(3).replace("s1,question 1,mmlu,1,", "s1,question 1,mmlu,7,"))
    with pytest.raises(ConfigError, match=r"row 3, column 'a': 7.0 is outside 0..1"):
        read_routerbench(table, choice=TierChoice(weak="a", strong="b"))


def test_duplicate_sample_ids_are_refused(tmp_path: Path) -> None:
    table = tmp_path / "routerbench.csv"
    table.write_text(routerbench_csv(3).replace("s2,", "s0,"))
    with pytest.raises(ConfigError, match="rows 2 and 4 share the sample_id 's0'"):
        read_routerbench(table, choice=TierChoice(weak="a", strong="b"))


# -- judged outcomes ---------------------------------------------------------------------------


def test_judged_outcomes_map_the_judge_scale_and_say_how(tmp_path: Path) -> None:
    path = tmp_path / "judgements.jsonl"
    lines = [
        judgement(81, WEAK, 4), judgement(81, WEAK, 6, turn=2),
        judgement(81, STRONG, 10), judgement(81, STRONG, 10, turn=2),
        judgement(82, WEAK, 1), judgement(82, STRONG, 7),
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    imported = read_judged(path)
    first, second = imported.outcomes.rows
    assert first.prompt == "What is 81 squared?" and first.id == "mt-bench-81"
    assert first.outcomes[WEAK].quality == pytest.approx((5 - 1) / 9)  # mean of turns 4 and 6
    assert first.outcomes[STRONG].quality == 1.0 and second.outcomes[WEAK].quality == 0.0
    assert any("quality = (mean judge score over turns - 1) / 9" in n for n in imported.notes)


def test_a_judge_without_a_rating_is_refused_or_its_question_dropped(tmp_path: Path) -> None:
    path = tmp_path / "judgements.jsonl"
    path.write_text(judged_jsonl(3))
    text = path.read_text().splitlines()
    item = json.loads(text[3])
    item["score"] = -1
    text[3] = json.dumps(item)
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(
        ConfigError, match=r"judgements.jsonl:4, column 'score': -1 is not a judge score"
    ):
        read_judged(path)
    dropped = read_judged(path, drop_unscored=True)
    assert dropped.dropped == 1 and [r.id for r in dropped.outcomes.rows] == [
        "mt-bench-0",
        "mt-bench-2",
    ]


# -- every malformed file: one line, exit 2 ----------------------------------------------------


def assert_one_line_error(code: int, err: str, path: Path) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    assert str(path) in lines[0] or path.name in lines[0]


FILE_KINDS = ("routellm", "routerbench", "judged", "outcomes")


def written(kind: str, directory: Path, rows: int) -> Path:
    if kind == "routellm":
        path = directory / "responses.csv"
        cells = [("True" if i % 2 else "False", "True") for i in range(rows)]
        path.write_text(routellm_csv([f"question {i}" for i in range(rows)], cells))
    elif kind == "routerbench":
        path = directory / "routerbench.csv"
        path.write_text(routerbench_csv(rows))
    elif kind == "judged":
        path = directory / "judgements.jsonl"
        path.write_text(judged_jsonl(rows))
    else:
        path = directory / "outcomes.jsonl"
        source = written("routellm", directory, rows)
        read_routellm_csv(source).outcomes.write(path)
    return path


def run(kind: str, path: Path, out: Path) -> tuple[int, str, str]:
    if kind == "outcomes":
        return cli("eval", "sweep", str(path), "--routers", "random,length")
    extra = ["--tiers", "a,c"] if kind == "routerbench" else []
    return cli("eval", "import", kind, str(path), "--out", str(out), *extra)


MUTATIONS = ("blank", "nan", "text", "truncate", "empty", "drop_column", "duplicate", "missing")


def mutated(kind: str, path: Path, mutation: str, where: int) -> None:
    text = path.read_text()
    lines = text.splitlines()
    row = 1 + where % (len(lines) - 1)  # a data line (line 0 is a CSV header or a first row)
    if mutation == "empty":
        path.write_text("")
    elif mutation == "missing":
        path.unlink()
    elif mutation == "truncate":
        path.write_text(text[: max(1, where % len(text))])
    elif mutation == "duplicate":
        path.write_text("\n".join([*lines, lines[row]]) + "\n")
    elif kind in ("routellm", "routerbench"):
        cells = lines[row].split(",")
        column = 1 if kind == "routellm" else 3
        if mutation == "drop_column":
            lines = [
                ",".join(c for i, c in enumerate(line.split(",")) if i != column) for line in lines
            ]
        else:
            cells[column] = {"blank": "", "nan": "nan", "text": "maybe"}[mutation]
            lines[row] = ",".join(cells)
        path.write_text("\n".join(lines) + "\n")
    else:
        item = json.loads(lines[row])
        if kind == "judged":
            if mutation == "drop_column":
                del item["score"]
            else:
                item["score"] = {"blank": None, "nan": float("nan"), "text": "eight"}[mutation]
        else:
            tier = next(iter(item["outcomes"]))
            if mutation == "drop_column":
                del item["outcomes"][tier]
            else:
                item["outcomes"][tier]["quality"] = {
                    "blank": None,
                    "nan": float("nan"),
                    "text": "x",
                }[mutation]
        lines[row] = json.dumps(item)
        path.write_text("\n".join(lines) + "\n")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(FILE_KINDS),
    mutation=st.sampled_from(MUTATIONS),
    where=st.integers(min_value=0, max_value=10_000),
    rows=st.integers(min_value=3, max_value=8),
)
def test_malformed_files_end_in_one_line_and_exit_two(
    tmp_path_factory: pytest.TempPathFactory, kind: str, mutation: str, where: int, rows: int
) -> None:
    directory = tmp_path_factory.mktemp("malformed")
    path = written(kind, directory, rows)
    mutated(kind, path, mutation, where)
    code, _, err = run(kind, path, directory / "out.jsonl")
    if mutation != "truncate" or code != 0:
        assert_one_line_error(code, err, path)
    else:
        # A cut that happens to leave whole rows is a smaller set.
        assert not err


def test_a_truncated_pickle_is_named(tmp_path: Path) -> None:
    path = tmp_path / "routerbench.pkl"
    path.write_bytes(pickle.dumps({"prompt": ["x"] * 50})[:20])
    code, _, err = cli("eval", "import", "routerbench", str(path), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, path)
    assert "may be truncated" in err


def test_outcome_files_refuse_repeated_ids(tmp_path: Path) -> None:
    path = written("outcomes", tmp_path, 4)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(
        ConfigError, match=r"outcomes.jsonl:5 repeats the id 'routellm-00001' of line 2"
    ):
        OutcomeSet.read(path)
