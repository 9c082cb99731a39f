//! `ferrocorn help [SUBCOMMAND]`: the help a user types first, as `cargo
//! help` and `git help` take it. Without this, `help` would be taken for
//! APP_MODULE and the server would try to import a module named `help`
//! (an app module of that name is still served as `help:application`).

use std::ffi::OsString;

/// The subcommands `help` knows, as `ferrocorn --help` lists them.
const SUBCOMMANDS: [&str; 4] = ["call", "run", "bundle", "healthcheck"];

/// The words that print the help asked for: `help` alone is `--help`,
/// `help SUB` is `SUB --help`. `None`: the words do not ask for help.
/// `Err`: one line naming what is wrong.
pub fn as_help_request(words: &[OsString]) -> Option<Result<Vec<OsString>, String>> {
    if words.first()? != "help" {
        return None;
    }
    let words = match words.get(1..) {
        Some([]) | None => Ok(vec![OsString::from("--help")]),
        Some([sub]) if SUBCOMMANDS.iter().any(|known| sub == *known) => {
            Ok(vec![sub.clone(), OsString::from("--help")])
        }
        Some([other]) => Err(format!(
            "no subcommand '{}': ferrocorn help [{}]",
            other.to_string_lossy(),
            SUBCOMMANDS.join("|")
        )),
        Some(_) => Err(format!(
            "too many words: ferrocorn help [{}]",
            SUBCOMMANDS.join("|")
        )),
    };
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<OsString> {
        text.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn help_alone_is_the_server_s_help() {
        assert_eq!(as_help_request(&words("help")), Some(Ok(words("--help"))));
    }

    #[test]
    fn help_with_a_subcommand_is_its_help() {
        for sub in SUBCOMMANDS {
            let expected = vec![OsString::from(sub), OsString::from("--help")];
            assert_eq!(
                as_help_request(&words(&format!("help {sub}"))),
                Some(Ok(expected))
            );
        }
    }

    #[test]
    fn an_unknown_subcommand_is_named() {
        let Some(Err(line)) = as_help_request(&words("help serve")) else {
            panic!("an error");
        };
        assert!(line.contains("'serve'") && line.contains("call|run|bundle|healthcheck"));
        assert!(matches!(
            as_help_request(&words("help run x")),
            Some(Err(_))
        ));
    }

    #[test]
    fn other_words_are_not_a_help_request() {
        assert_eq!(as_help_request(&words("help:application")), None);
        assert_eq!(as_help_request(&words("-w 2 help")), None);
        assert_eq!(as_help_request(&[]), None);
    }
}
