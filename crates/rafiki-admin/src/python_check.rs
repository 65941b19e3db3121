//! The upload check of a model file: it must be UTF-8, parse as Python of the workers'
//! version (syntax newer than their interpreter is refused, as it would fail there), and define
//! the named class at module level. The source is only parsed (with Ruff's parser), never run: the admin
//! executes no user code. Errors that only running the code can find (a failing import, a
//! missing method) surface later, in the train job.

use ruff_python_ast::token::TokenKind;
use ruff_python_ast::{ExceptHandler, PythonVersion, Stmt};
use ruff_python_parser::{Mode, ParseOptions};

/// Deepest nesting accepted, as estimated by [`nesting_estimate`]. CPython itself refuses far
/// less (200 nested brackets, 100 nested blocks), so no runnable model is refused; the bound
/// keeps the parser, which recurses on nesting, within [`CHECK_STACK_BYTES`].
pub const MAX_NESTING: usize = 3000;

/// Stack of the thread that parses: enough for [`MAX_NESTING`] even in debug builds.
pub const CHECK_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Why a model file was refused, as told to its uploader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The bytes are not UTF-8.
    #[error(
        "the model file is not UTF-8 text (invalid byte at line {line}, byte offset {offset})"
    )]
    NotUtf8 {
        /// 1-based line of the first invalid byte.
        line: usize,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The source does not parse.
    #[error("the model file has a Python syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// Nested deeper than any Python implementation accepts.
    #[error(
        "the model file nests brackets, operators or blocks more than {MAX_NESTING} levels deep"
    )]
    TooDeep,
    /// No class of that name at module level.
    #[error("the model file defines no top-level class named `{0}`")]
    MissingClass(String),
}

/// Checks `source` as a model file defining `class_name` on a thread of its own with a stack of
/// [`CHECK_STACK_BYTES`], so neither a large file stalls the async runtime nor deep nesting
/// overflows a small stack.
pub async fn check_model_source_off_thread(
    source: std::sync::Arc<[u8]>,
    class_name: String,
    python: PythonVersion,
) -> std::io::Result<Result<(), SourceError>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("model-check".into())
        .stack_size(CHECK_STACK_BYTES)
        .spawn(move || {
            let _ = tx.send(check_model_source(&source, &class_name, python));
        })?;
    rx.await
        .map_err(|_| std::io::Error::other("the model check thread panicked"))
}

/// Checks `source` as a model file defining `class_name`, for workers running Python `python`.
/// Needs a thread with a stack of [`CHECK_STACK_BYTES`]: see [`check_model_source_off_thread`].
pub fn check_model_source(
    source: &[u8],
    class_name: &str,
    python: PythonVersion,
) -> Result<(), SourceError> {
    let text = std::str::from_utf8(source).map_err(|err| {
        let offset = err.valid_up_to();
        SourceError::NotUtf8 {
            line: line_of(&source[..offset]),
            offset,
        }
    })?;
    if nesting_estimate(text) > MAX_NESTING {
        return Err(SourceError::TooDeep);
    }
    let syntax_error = |at: usize, message: String| {
        let offset = at.min(text.len());
        let before = &text.as_bytes()[..offset];
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        SourceError::Syntax {
            line: line_of(before),
            column: text[line_start..offset].chars().count() + 1,
            message,
        }
    };
    let options = ParseOptions::from(Mode::Module).with_target_version(python);
    let parsed = ruff_python_parser::parse(text, options)
        .map_err(|err| syntax_error(err.location.start().into(), err.error.to_string()))?;
    if let Some(newer) = parsed.unsupported_syntax_errors().first() {
        return Err(syntax_error(
            newer.range.start().into(),
            format!("{newer}, and the workers run Python {python}"),
        ));
    }
    let module = parsed
        .try_into_module()
        .expect("a file parsed in module mode is a module");
    if defines_class(&module.syntax().body, class_name) {
        Ok(())
    } else {
        Err(SourceError::MissingClass(class_name.to_owned()))
    }
}

/// An upper bound on how deeply the syntax tree of `text` nests, from its tokens alone (the
/// lexer does not recurse, so this is safe on any input): the open blocks plus, along the path
/// of open brackets, the tokens of each comma-separated element. A flat list of a million
/// items scores low; `1+1+...`, `-----x` or `a.b.b.b...` score their length, since each of
/// their tokens adds a level to the tree.
fn nesting_estimate(text: &str) -> usize {
    let mut lexer = ruff_python_parser::lexer::lex(text, Mode::Module);
    // Tokens of the current element at each open bracket, outermost first.
    let mut elements: Vec<usize> = vec![0];
    let mut in_elements = 0usize;
    let mut blocks = 0usize;
    let mut deepest = 0usize;
    loop {
        match lexer.next_token() {
            TokenKind::EndOfFile => break,
            TokenKind::Comment | TokenKind::NonLogicalNewline => {}
            TokenKind::Indent => blocks += 1,
            TokenKind::Dedent => blocks = blocks.saturating_sub(1),
            TokenKind::Lpar
            | TokenKind::Lsqb
            | TokenKind::Lbrace
            | TokenKind::FStringStart
            | TokenKind::TStringStart => {
                *elements.last_mut().expect("the root frame") += 1;
                in_elements += 1;
                elements.push(0);
            }
            TokenKind::Rpar
            | TokenKind::Rsqb
            | TokenKind::Rbrace
            | TokenKind::FStringEnd
            | TokenKind::TStringEnd => {
                if elements.len() > 1 {
                    in_elements -= elements.pop().expect("more than the root frame");
                }
            }
            TokenKind::Comma | TokenKind::Newline | TokenKind::Semi => {
                let current = elements.last_mut().expect("the root frame");
                in_elements -= *current;
                *current = 0;
            }
            _ => {
                *elements.last_mut().expect("the root frame") += 1;
                in_elements += 1;
            }
        }
        deepest = deepest.max(blocks + in_elements + elements.len());
    }
    deepest
}

/// 1-based line number of the byte just after `before`.
fn line_of(before: &[u8]) -> usize {
    before.iter().filter(|b| **b == b'\n').count() + 1
}

/// Whether `body` (a module's statements) binds `name` to a class at module scope. Classes
/// inside module-level `if`, `try` and `with` blocks count, as they still define a module
/// attribute; classes nested in functions or other classes do not.
fn defines_class(body: &[Stmt], name: &str) -> bool {
    body.iter().any(|stmt| match stmt {
        Stmt::ClassDef(class) => class.name.as_str() == name,
        Stmt::If(block) => {
            defines_class(&block.body, name)
                || block
                    .elif_else_clauses
                    .iter()
                    .any(|clause| defines_class(&clause.body, name))
        }
        Stmt::Try(block) => {
            defines_class(&block.body, name)
                || defines_class(&block.orelse, name)
                || defines_class(&block.finalbody, name)
                || block.handlers.iter().any(|handler| match handler {
                    ExceptHandler::ExceptHandler(h) => defines_class(&h.body, name),
                })
        }
        Stmt::With(block) => defines_class(&block.body, name),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The workers' Python in these tests.
    const PY: PythonVersion = PythonVersion::PY311;

    #[test]
    fn syntax_newer_than_the_workers_python_is_refused_naming_both_versions() {
        let src = "type Vector = list[float]\n\nclass M:\n    pass\n";
        match check_model_source(src.as_bytes(), "M", PY) {
            Err(SourceError::Syntax {
                line: 1, message, ..
            }) => {
                assert!(
                    message.contains("3.12") && message.contains("3.11"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            check_model_source(src.as_bytes(), "M", PythonVersion::PY312),
            Ok(())
        );
    }

    const MODEL: &str = "\
import json
from rafiki.model import BaseModel

class Helper:
    pass

class MyModel(BaseModel):
    def train(self, path):
        print(f\"training on {path!r}\")
";

    #[test]
    fn accepts_a_module_defining_the_class() {
        assert_eq!(check_model_source(MODEL.as_bytes(), "MyModel", PY), Ok(()));
        assert_eq!(check_model_source(MODEL.as_bytes(), "Helper", PY), Ok(()));
    }

    #[test]
    fn accepts_modern_syntax_and_a_byte_order_mark() {
        let src = "\u{feff}type Point = tuple[float, float]\n\
                   class M[T]:\n    def f(self, x):\n        match x:\n            case [a, *_]: return f\"{'nested'}\"\n            case _: return None\n";
        // Type aliases and generic classes are Python 3.12's: accepted for workers that run it.
        let py312 = PythonVersion::PY312;
        assert_eq!(check_model_source(src.as_bytes(), "M", py312), Ok(()));
    }

    #[test]
    fn accepts_classes_in_module_level_blocks_only() {
        let src = "try:\n    import torch\nexcept ImportError:\n    class Fallback: pass\n\
                   if True:\n    pass\nelse:\n    class InElse: pass\n\
                   def f():\n    class InFunction: pass\n\
                   class Outer:\n    class Inner: pass\n";
        assert_eq!(check_model_source(src.as_bytes(), "Fallback", PY), Ok(()));
        assert_eq!(check_model_source(src.as_bytes(), "InElse", PY), Ok(()));
        for nested in ["InFunction", "Inner"] {
            assert_eq!(
                check_model_source(src.as_bytes(), nested, PY),
                Err(SourceError::MissingClass(nested.into()))
            );
        }
    }

    #[test]
    fn a_missing_class_is_named() {
        let err = check_model_source(MODEL.as_bytes(), "Other", PY).unwrap_err();
        assert_eq!(err, SourceError::MissingClass("Other".into()));
        assert!(err.to_string().contains("`Other`"));
        // A function or variable of that name is not a class.
        let src = "def Other(): pass\nOther2 = 1\n";
        assert!(check_model_source(src.as_bytes(), "Other", PY).is_err());
        assert!(check_model_source(src.as_bytes(), "Other2", PY).is_err());
    }

    #[test]
    fn syntax_errors_report_their_line_and_column() {
        let src = "class MyModel:\n    def f(self):\n        return (1,\n\nx = = 2\n";
        match check_model_source(src.as_bytes(), "MyModel", PY) {
            Err(SourceError::Syntax { line, .. }) => assert!(line >= 3, "line {line}"),
            other => panic!("expected a syntax error, got {other:?}"),
        }
        let src = "a = 1\nb = 2\nc = = 3\n";
        match check_model_source(src.as_bytes(), "X", PY) {
            Err(SourceError::Syntax { line, column, .. }) => {
                assert_eq!((line, column), (3, 5));
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
        let src = "class A:\npass\n";
        let err = check_model_source(src.as_bytes(), "A", PY).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn non_utf8_bytes_are_refused_with_their_position() {
        let mut src = b"x = 1\ny = '".to_vec();
        src.extend_from_slice(&[0xff, 0xfe]);
        src.extend_from_slice(b"'\nclass A: pass\n");
        assert_eq!(
            check_model_source(&src, "A", PY),
            Err(SourceError::NotUtf8 {
                line: 2,
                offset: 11
            })
        );
    }

    /// Runs the check on a thread with the stack the admin gives it.
    fn check_on_big_stack(src: String) -> Result<(), SourceError> {
        std::thread::Builder::new()
            .stack_size(CHECK_STACK_BYTES)
            .spawn(move || check_model_source(src.as_bytes(), "A", PY))
            .unwrap()
            .join()
            .unwrap()
    }

    /// Makers of sources that nest `n` levels deep in the ways Python allows without commas.
    fn deep_sources() -> Vec<fn(usize) -> String> {
        vec![
            |n| format!("x = {}1{}\n", "(".repeat(n), ")".repeat(n)),
            |n| format!("x = {}\n", "[".repeat(n)),
            |n| format!("x = {}1\n", "1+".repeat(n)),
            |n| format!("x = {}1\n", "2**".repeat(n)),
            |n| format!("x = {}1\n", "-".repeat(n)),
            |n| format!("x = {}y\n", "not ".repeat(n)),
            |n| format!("x = y{}\n", ".b".repeat(n)),
            |n| format!("x = y{}\n", "()".repeat(n)),
            |n| format!("x = {}0\n", "1 if c else ".repeat(n)),
            |n| format!("x = {}0\n", "lambda: ".repeat(n)),
            |n| format!("x = {}1{}\n", "f'{".repeat(n), "}'".repeat(n)),
            |n| {
                // Its size grows with the square of the depth: keep it to a few thousand.
                let n = n.min(MAX_NESTING + 100);
                let mut s = String::new();
                for i in 0..n {
                    s.push_str(&" ".repeat(i));
                    s.push_str("if x:\n");
                }
                s + &" ".repeat(n) + "pass\n"
            },
        ]
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing_and_never_crashes() {
        for make in deep_sources() {
            let src = make(200_000);
            let head = src[..40].to_owned();
            assert_eq!(check_on_big_stack(src), Err(SourceError::TooDeep), "{head}");
        }
    }

    #[test]
    fn the_deepest_accepted_nesting_parses_on_the_check_stack() {
        for make in deep_sources() {
            // The deepest source of this shape under the bound.
            let (mut low, mut high) = (1, MAX_NESTING + 1);
            while low + 1 < high {
                let mid = (low + high) / 2;
                if nesting_estimate(&make(mid)) <= MAX_NESTING {
                    low = mid;
                } else {
                    high = mid;
                }
            }
            let src = make(low);
            let estimate = nesting_estimate(&src);
            assert!(
                estimate > MAX_NESTING * 9 / 10,
                "{estimate}: {}",
                &src[..40]
            );
            // Some are invalid Python; what matters is that nothing overflows.
            let _ = check_on_big_stack(src);
        }
    }

    #[test]
    fn long_flat_sources_are_not_mistaken_for_deep_ones() {
        let items = (0..200_000).map(|i| i.to_string()).collect::<Vec<_>>();
        let src = format!(
            "DATA = [{}]\nTABLE = {{{}}}\nclass A: pass\n",
            items.join(", "),
            items
                .iter()
                .map(|i| format!("{i}: ({i}, '{i}')"))
                .collect::<Vec<_>>()
                .join(",\n    ")
        );
        assert!(nesting_estimate(&src) < 20);
        assert_eq!(check_on_big_stack(src), Ok(()));
        let many_lines = "x = a + b * c - d\n".repeat(100_000) + "class A: pass\n";
        assert_eq!(check_on_big_stack(many_lines), Ok(()));
    }
}
