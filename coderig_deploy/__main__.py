"""python -m coderig_deploy"""

from coderig_deploy.cli import main

main()
